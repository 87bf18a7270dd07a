"""The history of one file: the commits that added, modified or deleted it."""

from __future__ import annotations

import hashlib

from .backend import Backend
from .errors import NotFound
from .model import Commit

#: Commits looked at for one page of a file's history (a page may hold fewer than asked: the cursor
#: then continues the walk where it stopped).
SCAN_LIMIT = 1000


def content_key(backend: Backend, repo: str, ref: str | None, path: str) -> tuple[str, str] | None:
    """What identifies the file's content at ``ref`` (None: no such file): the store's hash, equal
    within one store for equal content; a store that gives none has the bytes hashed here."""
    if ref is None:
        return None
    try:
        info = backend.inspect_file(repo, ref, path)
        if info.hash:
            return "store", info.hash
        return "sha256", hashlib.sha256(backend.get_file(repo, ref, path)).hexdigest()
    except NotFound:
        return None


def file_history(backend: Backend, repo: str, ref: str, path: str, *, limit: int = 50,
                 before: str | None = None, scan: int = SCAN_LIMIT) -> tuple[list[Commit], str | None]:
    """The commits in the history of ``ref`` (newest first, after the cursor ``before``) that changed
    the file at ``path``: at most ``limit`` of them, looking at no more than ``scan`` commits. The second
    value is the cursor of the next page (the last commit looked at), None when the history ended."""
    found: list[Commit] = []
    scanned = 0
    cursor = before
    # newest first, a commit's parent is the next commit looked at: its key, looked up once, serves both
    parent_key: dict[str, tuple[str, str] | None] = {}
    while scanned < scan:
        page = backend.list_commits(repo, ref, limit=min(100, scan - scanned), before=cursor)
        if not page:
            return found, None
        for commit in page:
            scanned += 1
            cursor = commit.id
            mine = parent_key[commit.id] if commit.id in parent_key else content_key(backend, repo, commit.id, path)
            parents = content_key(backend, repo, commit.parent, path)
            parent_key = {commit.parent: parents} if commit.parent else {}
            if mine != parents:
                found.append(commit)
                if len(found) == limit:
                    return found, cursor
            if scanned == scan:
                break
    return found, cursor
