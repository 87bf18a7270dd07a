"""The ``GET /pachls/api/repos`` listing: every repo with its branches, as one JSON body.

The panel polls it, so the body is kept while the store's change token holds
(``LocalBackend.change_token``: cheap, and it sees commits made by other processes),
and it carries an ETag so an unchanged listing answers 304. A backend without one (a
Pachyderm cluster has no cheap token) lists on each load, which costs it ListRepo and
ListBranch and an InspectCommit per head it has not seen; when what it lists is what the
last listing showed, that body and ETag are reused as they were.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Callable

from cachetools import LRUCache

#: JSON of each branch's finished head by (repo, branch), with the Commit it was made from: a
#: listing of thousands of branches mostly shows the same heads request after request. Keyed by
#: branch, not by commit, so a stream of commits replaces entries instead of adding them (the
#: server's memory stays flat); a head whose metadata was edited since is a different value (JSON
#: made again). Least recently used (deleted branches) go first.
_HEAD_JSON: LRUCache[tuple[str, str], tuple[Any, dict]] = LRUCache(200_000)
_HEAD_JSON_LOCK = threading.Lock()  # listings are built on several worker threads


def head_json(branch) -> dict | None:
    head = branch.head
    if head is None:
        return None
    if head.finished is None:
        return head.to_json()
    key = (branch.repo, branch.name)
    with _HEAD_JSON_LOCK:
        found = _HEAD_JSON.get(key)
    if found is not None and (found[0] is head or found[0] == head):
        return found[1]
    made = head.to_json()
    with _HEAD_JSON_LOCK:
        _HEAD_JSON[key] = (head, made)
    return made


def branch_json(branch) -> dict:
    return {"repo": branch.repo, "name": branch.name, "head": head_json(branch)}


def branches_json(branches) -> list[dict]:
    return sorted((branch_json(b) for b in branches), key=lambda b: b["name"])


def repo_json(repo, branches) -> dict:
    item = repo.to_json()
    item["branches"] = branches_json(branches)
    return item


def change_token_source(backend) -> Callable[[], Any] | None:
    """The backend's cheap change token (see ``LocalBackend.change_token``), or None: never keep."""
    own = getattr(backend, "change_token", None)
    return own if callable(own) else None


class ReposListing:
    """The last listing body and its ETag, valid while the store's change token holds.

    ``load`` runs in the server's worker threads, many at once when many panels poll. One
    rebuild runs at a time: a load that arrives while a rebuild is running waits for it and
    takes its result when that is provably new enough (the change token did not move since it
    was read for the rebuild), or when the rebuild started after the load arrived; otherwise it
    runs the next rebuild, which the loads still waiting then share. So every answer is at
    least as new as the store was when its request arrived, and N panels polling right after a
    commit cost one rebuild, not N. Body, ETag and token are kept as one tuple, so a load never
    pairs one listing's body with another's ETag or token.
    """

    def __init__(self, backend) -> None:
        self.backend = backend
        self.source = change_token_source(backend)
        #: (token, body, etag) of the newest listing whose token is known, or None
        self.kept: tuple[Any, bytes, str] | None = None
        self._cond = threading.Condition()
        self._clock = 0  # counts arrivals and rebuild starts (under _cond)
        self._building = False
        #: (clock at its start, body, etag) of the last finished rebuild
        self._last: tuple[int, bytes, str] | None = None
        self.rebuilds = 0
        self._fragments: dict[str, tuple[Any, bytes]] = {}  # repo key -> (what it showed, its JSON)
        #: (repo keys in order, body, etag) of the last rebuild: the body while no repo's JSON changes
        self._whole: tuple[tuple[str, ...], bytes, str] | None = None

    def current_token(self) -> Any:
        if self.source is None:
            return None
        try:
            return self.source()
        except Exception:
            return None

    def _fresh_kept(self) -> tuple[bytes, str] | None:
        """The kept listing if the change token still equals the one read for it."""
        kept = self.kept
        if kept is None:
            return None
        token = self.current_token()
        if token is not None and token == kept[0]:
            return kept[1], kept[2]
        return None

    def load(self) -> tuple[bytes, str]:
        """(body, etag): the kept body if nothing changed, else a fresh one (blocking)."""
        found = self._fresh_kept()
        if found is not None:
            return found
        with self._cond:
            self._clock += 1
            arrival = self._clock
            while True:
                found = self._fresh_kept()
                if found is not None:
                    return found
                last = self._last
                if last is not None and last[0] > arrival:  # that rebuild started after we arrived
                    return last[1], last[2]
                if not self._building:
                    self._building = True
                    self._clock += 1
                    started = self._clock
                    break
                self._cond.wait()
        result = None
        try:
            result = self._rebuild()
            return result[1], result[2]
        finally:
            with self._cond:
                self._building = False
                if result is not None:
                    self._last = (started, result[1], result[2])
                    if result[0] is not None:
                        self.kept = result
                self._cond.notify_all()

    def _rebuild(self) -> tuple[Any, bytes, str]:
        token = self.current_token()  # read first: the data loaded below is at least this new
        self.rebuilds += 1
        backend = self.backend
        repos, branches = backend.list_repos(), backend.list_branches()
        by_repo: dict[str, list] = {}
        for branch in branches:
            by_repo.setdefault(branch.repo, []).append(branch)
        # A commit changes one repo: the JSON of every other repo is reused as it was.
        fragments: dict[str, tuple[Any, bytes]] = {}
        parts = []
        every_part_kept = True
        for repo in repos:
            mine = by_repo.get(repo.key, [])
            # an open head (a Pachyderm branch mid-commit) changes under the same id: never reused; a
            # finished one seldom does (a squash re-parents it): the branches themselves are compared
            signature = None if any(b.head is not None and b.head.finished is None for b in mine) else (
                repo, tuple(mine))
            kept = self._fragments.get(repo.key)
            if signature is not None and kept is not None and kept[0] == signature:
                part = kept[1]
            else:
                part = json.dumps(repo_json(repo, mine)).encode()
                every_part_kept = False
            fragments[repo.key] = (signature, part)
            parts.append(part)
        self._fragments = fragments
        keys = tuple(repo.key for repo in repos)
        whole = self._whole
        if every_part_kept and whole is not None and whole[0] == keys:
            body, etag = whole[1], whole[2]  # the same repos, each as it was: the same body
        else:
            head = json.dumps({"kind": backend.kind, "address": backend.address}).encode()
            body = b'{"backend": ' + head + b', "repos": [' + b", ".join(parts) + b"]}"
            etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        self._whole = (keys, body, etag)
        return token, body, etag
