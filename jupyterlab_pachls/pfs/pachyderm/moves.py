"""Branch moves (rollbacks) kept in the metadata repo ``pachls-meta`` (default project): one JSON file
per move under ``/branch-moves/<project>/<repo>/<branch>/``, written through the backend's own commit
path. pachd has no record of branch moves, and no conditional branch update either: the
``expected_head`` check of ``move_branch`` is atomic within one process only."""

from __future__ import annotations

import json
import time
import uuid

from ..address import parse_repo
from ..backend import Backend
from ..errors import AlreadyExists, NotFound
from ..model import BranchMove, from_timestamp

META_REPO = "pachls-meta"


def _moves_dir(key: str, branch: str | None = None) -> str:
    address = parse_repo(key)
    repo_dir = f"/branch-moves/{address.project}/{address.repo}"
    return repo_dir if branch is None else f"{repo_dir}/{branch}"


class BranchMoves:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def record(self, key: str, branch: str, old: str | None, new: str, author: str, reason: str) -> None:
        try:
            self.backend.create_repo(META_REPO, description="jupyterlab-pachls records (branch moves)")
        except AlreadyExists:
            pass
        now = time.time()
        record = {"repo": key, "branch": branch, "old_head": old, "new_head": new, "author": author,
                  "time": now, "reason": reason}
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        with self.backend.commit(META_REPO, "master", message=f"move {key}@{branch} to {new}", author=author) as c:
            c.put_file(f"{_moves_dir(key, branch)}/{name}", json.dumps(record).encode())

    def of(self, key: str, branch: str) -> list[BranchMove]:
        """The recorded moves of ``key@branch``, newest first."""
        try:
            files = [i for i in self.backend.walk(META_REPO, "master", _moves_dir(key, branch), max_depth=1)
                     if not i.is_dir]
        except NotFound:
            return []
        moves = []
        for info in sorted(files, key=lambda i: i.path, reverse=True):
            r = json.loads(self.backend.get_file(META_REPO, "master", info.path))
            moves.append(BranchMove(key, branch, r["old_head"], r["new_head"], r["author"],
                                    from_timestamp(r["time"]), r["reason"]))
        return moves

    def forget(self, key: str) -> None:
        """Drop the records of a deleted repo."""
        try:
            self.backend.inspect_repo(META_REPO)
        except NotFound:
            return
        prefix = _moves_dir(key)
        try:
            self.backend.inspect_file(META_REPO, "master", prefix)
        except NotFound:
            return
        with self.backend.commit(META_REPO, "master", message=f"forget branch moves of deleted repo {key}") as c:
            c.delete_file(prefix)
