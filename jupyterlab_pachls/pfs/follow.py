"""Following a branch: every commit that lands on it, once, oldest first.

Works the same over every ``Backend`` (the embedded store, a Pachyderm cluster) by looking at the
branch head: when it moves, the commits from the new head back to the last one reported are the
new ones. What counts as new is fixed when following starts: commits that finished after the
starting commit (``after``, or the branch head at the start). A rollback or a move of the branch to
an older commit is therefore no new commit, and nothing is reported twice.

``jupyter pachls serve`` also serves pachd's ``SubscribeCommit`` for plain ``pachyderm_sdk`` clients;
this module is what the Python API, the magics and the REST long-poll route use.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from .backend import Backend
from .errors import InvalidArgument, NotFound
from .model import Commit

#: Seconds between two looks at the branch head while waiting: the first pause, growing while nothing
#: lands up to the longest (a follower left running for hours asks a cluster little).
POLL_INTERVAL = 0.25
MAX_POLL_INTERVAL = 2.0
#: One look walks back at most this many commits from the head (more landing between two looks, or a
#: follower started with ``after=""`` on a longer history: the older ones are not reported).
MAX_PER_LOOK = 1000
PAGE = 100


class BranchFollower:
    """The commits that land on ``repo@branch`` after a starting point.

    ``after``: a commit id (or ref) of the repo to start after; ``None`` starts at the branch head
    now (an empty or missing branch: every commit it gets is new); ``""`` starts before the branch's
    first commit (every commit of its history is new). ``cursor`` is the value to pass as ``after``
    to continue where this follower is (a REST client asks again with it).
    """

    def __init__(self, backend: Backend, repo: str, branch: str, after: str | None = None) -> None:
        self.backend = backend
        self.repo = repo
        self.branch = branch
        backend.inspect_repo(repo)
        self._since: datetime | None = None
        self._last: str | None = None
        if after is None:
            try:
                head = backend.inspect_branch(repo, branch).head
            except NotFound:
                head = None  # the first commit on the branch creates it
            if head is not None:
                self._last, self._since = head.id, head.finished
        elif after != "":
            if not isinstance(after, str):
                raise InvalidArgument("after must be a commit id", after=repr(after))
            start = backend.inspect_commit(repo, after)
            if start.is_open:
                raise InvalidArgument(f"commit {start.id} is still open; follow from a finished commit",
                                      commit=start.id)
            self._last, self._since = start.id, start.finished
        self._seen_head = self._last

    @property
    def cursor(self) -> str:
        return self._last or ""

    def poll(self) -> list[Commit]:
        """One look at the branch: the commits that landed since the last look, oldest first."""
        try:
            head = self.backend.inspect_branch(self.repo, self.branch).head
        except NotFound:
            return []
        if head is None or head.id == self._seen_head:
            return []
        fresh: list[Commit] = []
        before = None
        while len(fresh) < MAX_PER_LOOK:
            page = self.backend.list_commits(self.repo, head.id, limit=PAGE, before=before)
            for commit in page:
                if self._reported(commit):
                    return self._take(head.id, fresh)
                fresh.append(commit)
            if len(page) < PAGE:
                break
            before = page[-1].id
        return self._take(head.id, fresh)

    def _reported(self, commit: Commit) -> bool:
        """Reported already, or there before following started."""
        if commit.id == self._last:
            return True
        return self._since is not None and commit.finished is not None and commit.finished <= self._since

    def _take(self, head: str, fresh: list[Commit]) -> list[Commit]:
        fresh.reverse()
        if fresh:
            self._last = fresh[-1].id
            if fresh[-1].finished is not None:
                self._since = fresh[-1].finished
        self._seen_head = head
        return fresh

    def wait(self, timeout: float | None = None, stop: threading.Event | None = None) -> list[Commit]:
        """Look until something lands (returned, oldest first), ``timeout`` seconds pass or ``stop``
        is set (then []). ``timeout`` None waits for as long as it takes."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        interval = POLL_INTERVAL
        while True:
            fresh = self.poll()
            if fresh or (stop is not None and stop.is_set()):
                return fresh
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return []
            pause = interval if left is None else min(interval, left)
            if stop is not None:
                stop.wait(pause)
            else:
                time.sleep(pause)
            interval = min(interval * 1.5, MAX_POLL_INTERVAL)


__all__ = ["BranchFollower", "POLL_INTERVAL", "MAX_POLL_INTERVAL"]
