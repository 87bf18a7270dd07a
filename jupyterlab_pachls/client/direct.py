"""The store opened in this process, for scripts and pipelines without a Jupyter server."""

from __future__ import annotations

import dataclasses
import getpass
import io
import os
import threading
from typing import BinaryIO, Iterator

from ..config import backend_spec, load_choice, load_config
from ..pfs import Branch, BranchMove, Commit, FileChange, FilePage, InvalidArgument, Repo, parse_repo
from .base import (
    MOUNTS_NEED_SERVER,
    Client,
    to_address,
    to_branch_address,
    to_file_address,
    to_older_address,
)
from .streams import ChunkReader


def default_backend_spec() -> dict:
    """The backend a client without a server opens: ``$PACHD_ADDRESS``, else a Pachyderm cluster
    saved by the panel in ``PachlsConfig.backend_file``, else the embedded store the server uses."""
    address = os.environ.get("PACHD_ADDRESS", "").strip()
    if address:
        return {"kind": "pachyderm", "pachd_address": address}
    config = load_config()
    try:
        choice = load_choice(config.backend_file)
    except (OSError, ValueError):  # a damaged file: the server would say so; a script opens the store
        choice = None
    return backend_spec(config, choice)


class DirectClient(Client):
    """The store opened in this process (no Jupyter server): everything but mounts."""

    mode = "direct"

    def __init__(self, spec: dict | None = None, *, author: str | None = None) -> None:
        from ..pfs import open_backend

        self.spec = dict(spec or default_backend_spec())
        self.backend = open_backend(self.spec)
        if author is None:
            try:
                author = getpass.getuser()
            except Exception:  # no user name in this environment
                author = ""
        self.author = author

    def __repr__(self) -> str:
        return f"<DirectClient {self.backend.kind} {self.backend.address}>"

    def describe(self) -> str:
        return f"no Jupyter server: {self.backend.kind} store at {self.backend.address} opened directly"

    def close(self) -> None:
        self.backend.close()

    def repos(self) -> list[Repo]:
        by_repo: dict[str, list[str]] = {}
        for b in self.backend.list_branches():
            by_repo.setdefault(b.repo, []).append(b.name)
        return [dataclasses.replace(r, branches=tuple(sorted(by_repo.get(r.key, ()))))
                for r in self.backend.list_repos()]

    def repo(self, name: str) -> Repo:
        key = str(parse_repo(name))
        found = self.backend.inspect_repo(key)
        return dataclasses.replace(found, branches=tuple(sorted(b.name for b in self.backend.list_branches(key))))

    def create_repo(self, name: str, description: str = "") -> Repo:
        parse_repo(name)
        return self.backend.create_repo(name, description=description)

    def branches(self, repo: str) -> list[Branch]:
        key = str(parse_repo(repo))
        self.backend.inspect_repo(key)
        return sorted(self.backend.list_branches(key), key=lambda b: b.name)

    def log(self, address: str, limit: int = 50) -> list[Commit]:
        a = to_address(address)
        if a.is_commit or a.ancestors:
            return self._log_from_commit(address, limit)
        self.backend.inspect_branch(a.repo_key, a.ref)
        return self.backend.list_commits(a.repo_key, a.ref, limit=limit)

    def inspect_commit(self, address: str) -> Commit:
        a = to_address(address)
        return self.backend.inspect_commit(a.repo_key, a.ref_text)

    def list_dir(self, address: str, limit: int = 400, after: str | None = None) -> FilePage:
        a = to_address(address, path=True)
        return self.backend.list_dir(a.repo_key, a.ref_text, a.path or "/", limit=limit, after=after)

    def open(self, address: str) -> BinaryIO:
        a = to_file_address(address)
        info = self.backend.inspect_file(a.repo_key, a.ref_text, a.path)
        if info.is_dir:
            raise InvalidArgument(f"{a.path} is a directory; list it with ls()", path=a.path)
        chunks = self.backend.read_file(a.repo_key, info.committed or a.ref_text, a.path)
        return io.BufferedReader(ChunkReader(iter(chunks), name=str(a)))  # type: ignore[return-value]

    def diff(self, new: str, old: str | None = None, path: str = "/") -> list[FileChange]:
        n = to_address(new)
        new_commit = self.backend.inspect_commit(n.repo_key, n.ref_text)
        if old is not None:
            o = to_older_address(old, n)
            old_id = self.backend.inspect_commit(o.repo_key, o.ref_text).id
        else:
            old_id = new_commit.parent
        return sorted(self.backend.diff(n.repo_key, old_id, new_commit.id, path), key=lambda c: c.path)

    def rollback(self, address: str, commit: str, *, expected_head: str | None = None,
                 reason: str = "rollback") -> Branch:
        a = to_branch_address(address)
        return self.backend.move_branch(a.repo_key, a.ref, commit, expected_head=expected_head,
                                        author=self.author, reason=reason)

    def moves(self, address: str) -> list[BranchMove]:
        a = to_branch_address(address)
        self.backend.inspect_branch(a.repo_key, a.ref)
        return self.backend.branch_moves(a.repo_key, a.ref)

    def subscribe(self, address: str, *, after: str | None = None, timeout: float | None = None,
                  stop: threading.Event | None = None) -> Iterator[Commit]:
        from ..pfs.follow import BranchFollower

        a = to_branch_address(address)
        # The starting point is fixed now (not at the first next()): a commit landing meanwhile is new.
        follower = BranchFollower(self.backend, a.repo_key, a.ref, self._after_id(a, after))

        def commits() -> Iterator[Commit]:
            while True:
                fresh = follower.wait(timeout, stop)
                if not fresh:
                    return
                yield from fresh
                if stop is not None and stop.is_set():
                    return

        return commits()

    def _put(self, repo: str, branch: str, files, message: str, on_file) -> Commit:
        from ..pfs.imports import ImportProgress, import_items, local_items

        progress = ImportProgress(repo=repo, branch=branch, on_file=on_file)
        return import_items(self.backend, repo, branch, local_items(files), message=message, author=self.author,
                            progress=progress).commit

    def blame(self, address: str) -> list:
        from ..labeling.history import blame

        a = to_file_address(address)
        return blame(self.backend, a.repo_key, a.ref_text, a.path)

    def label_diff(self, new: str, old: str | None = None) -> list:
        from ..labeling.history import diff_labels

        n = to_address(new)
        new_commit = self.backend.inspect_commit(n.repo_key, n.ref_text)
        old_id = new_commit.parent
        if old is not None:
            o = to_older_address(old, n)
            old_id = self.backend.inspect_commit(o.repo_key, o.ref_text).id
        return diff_labels(self.backend, n.repo_key, old_id, new_commit.id)

    def _label_rows(self, repo: str, ref: str, data: str | None, path: str) -> list[dict]:
        from ..labeling.rows import label_rows

        return label_rows(self.backend, repo, ref, data=data, path=path)

    def _archive_members(self, repo: str, commit: str, path: str) -> Iterator[tuple[str, BinaryIO | None]]:
        from ..pfs.archive import archive_entries, plan_archive

        for name, _info, chunks in archive_entries(self.backend, plan_archive(self.backend, repo, commit, path)):
            yield name, (None if chunks is None else ChunkReader(chunks, name=name))

    def _export_chunks(self, repo: str, commit: str, format: str, classes: list[str] | None) -> Iterator[bytes]:
        from ..labeling.formats import export_labels

        with export_labels(self.backend, repo, commit, format, classes=classes) as export:
            yield from export.chunks()

    def status(self) -> dict:
        return {"mode": self.mode, "where": self.describe(),
                "backend": {"kind": self.backend.kind, "address": self.backend.address},
                "mounts": None, "mounts_error": MOUNTS_NEED_SERVER}
