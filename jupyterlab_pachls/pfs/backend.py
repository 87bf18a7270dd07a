"""The one interface every store implements (embedded and Pachyderm cluster).

Everything above ``pfs/`` (mount server, labeling, REST, magics) talks to a
``Backend`` and nothing else, so the embedded store and a Pachyderm cluster are
interchangeable. Conventions shared by all methods:

- ``repo`` is ``name`` or ``project/name`` (the default project is ``default``).
- ``ref`` is a branch name, a commit id, or ``branch^N`` (N-th ancestor).
- Paths are repo-absolute (``/cats/001.png``); they are normalised and
  confined (see ``address.normalize_path``) before anything is read or written.
- Errors are the typed ``PfsError`` subclasses of ``errors.py``.

Commit semantics: ``start_commit`` opens a commit on a branch; ``put_file`` /
``delete_file`` stage changes in it; ``finish_commit`` lands all of them at
once (all-or-nothing) on the branch head *at the time it finishes*, so two
writers finishing on the same branch both land, in finish order. Pass
``expected_parent`` to make the landing a compare-and-set instead.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, Union

from .address import normalize_path
from .errors import InvalidArgument, NotFound
from .model import Branch, BranchMove, Commit, FileChange, FileInfo, FilePage, Provenance, Repo

#: Content for ``put_file``: bytes, a readable binary file object, or the path of a local file.
Content = Union[bytes, bytearray, memoryview, BinaryIO, os.PathLike]

DEFAULT_PAGE = 400
MAX_PAGE = 10_000


def check_page(path: object, limit: object, after: object) -> str:
    """Validate ``list_dir`` arguments the same way in every backend; return the normalised path."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be an integer between 1 and {MAX_PAGE}", limit=limit)
    if after is not None and not isinstance(after, str):
        raise InvalidArgument("after must be a path returned as 'next'")
    return normalize_path(path)


def walk_tree(list_dir: Callable[..., FilePage], repo: str, ref: str, path: str = "/", *,
              max_depth: int | None = None) -> Iterator[FileInfo]:
    """``Backend.walk`` over any ``list_dir`` (a part of a backend walks with its own), page by page."""
    stack = [(path, 0)]
    while stack:
        directory, depth = stack.pop()
        after = None
        children: list[tuple[str, int]] = []
        while True:
            page = list_dir(repo, ref, directory, after=after)
            for info in page.items:
                yield info
                if info.is_dir and (max_depth is None or depth + 1 < max_depth):
                    children.append((info.path, depth + 1))
            if page.next is None:
                break
            after = page.next
        stack.extend(reversed(children))


def _depth_first(list_dir: Callable[..., FilePage], repo: str, ref: str, top: FileInfo) -> Iterator[FileInfo]:
    """``top`` (left out when it is the root) and everything below it, depth first in path order."""
    if top.path.rstrip("/"):
        yield top
    if not top.is_dir:
        return
    after = None
    while True:
        page = list_dir(repo, ref, top.path.rstrip("/") or "/", after=after)
        for info in page.items:
            yield from _depth_first(list_dir, repo, ref, info) if info.is_dir else (info,)
        if page.next is None:
            return
        after = page.next


def check_commit_fields(message: object, author: object, metadata: object) -> dict[str, str]:
    """Validate ``start_commit``'s message, author and metadata the same way in every backend; return
    the metadata as a new dict."""
    if not isinstance(message, str) or not isinstance(author, str):
        raise InvalidArgument("message and author must be strings")
    metadata = dict(metadata or {})
    check_metadata(metadata)
    return metadata


def check_metadata(metadata: dict) -> None:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InvalidArgument("commit metadata must map strings to strings")


def check_history_limit(limit: object) -> None:
    """``list_commits``' page size: a positive integer (not a bool)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidArgument("limit must be a positive integer", limit=limit)


def check_range(offset: object, length: object) -> None:
    """``read_file``'s byte range: non-negative integers (``length`` None: to the end)."""
    if not isinstance(offset, int) or offset < 0 or (length is not None and (not isinstance(length, int) or length < 0)):
        raise InvalidArgument("offset and length must be non-negative integers")


class Backend(ABC):
    kind: str = "abstract"

    @property
    @abstractmethod
    def address(self) -> str:
        """Where the store lives (a directory, or a grpc:// address)."""

    def ping(self) -> None:
        """Raise ``Unavailable`` unless the store answers now: the health probe, quick and bounded."""
        self.list_repos()

    # -- repos -------------------------------------------------------------------
    @abstractmethod
    def create_repo(self, repo: str, description: str = "") -> Repo: ...

    @abstractmethod
    def inspect_repo(self, repo: str) -> Repo: ...

    @abstractmethod
    def list_repos(self) -> list[Repo]: ...

    @abstractmethod
    def delete_repo(self, repo: str) -> None: ...

    # -- branches ----------------------------------------------------------------
    @abstractmethod
    def create_branch(self, repo: str, branch: str, head: str | None = None) -> Branch:
        """Create ``branch`` (AlreadyExists if it exists), pointing at ``head`` (a ref) or at nothing."""

    @abstractmethod
    def inspect_branch(self, repo: str, branch: str) -> Branch: ...

    @abstractmethod
    def list_branches(self, repo: str | None = None) -> list[Branch]:
        """Branches of one repo, or of every repo when ``repo`` is None (one call for the panel)."""

    @abstractmethod
    def delete_branch(self, repo: str, branch: str) -> None: ...

    @abstractmethod
    def move_branch(
        self,
        repo: str,
        branch: str,
        to: str,
        *,
        expected_head: str | None = None,
        author: str = "",
        reason: str = "rollback",
    ) -> Branch:
        """Point ``branch`` at commit ``to`` (e.g. roll back). The move is recorded; no commit is lost.

        With ``expected_head`` the move is a compare-and-set: Conflict if the head moved.
        """

    @abstractmethod
    def branch_moves(self, repo: str, branch: str) -> list[BranchMove]:
        """Recorded head moves of ``branch``, newest first."""

    # -- commits -----------------------------------------------------------------
    @abstractmethod
    def start_commit(
        self,
        repo: str,
        branch: str,
        *,
        message: str = "",
        author: str = "",
        provenance: Iterable[Provenance] = (),
        metadata: dict[str, str] | None = None,
    ) -> Commit:
        """Open a commit on ``branch`` (created if missing). Provenance refs are resolved to commit ids."""

    @abstractmethod
    def put_files(self, commit: Commit, items: Iterable[tuple[str, Content]]) -> int:
        """Stage many files in an open commit; returns how many.

        A list or tuple is checked whole first: one bad path stages nothing. Items from an
        iterator are checked one by one (use ``Backend.commit`` to drop everything on error).
        """

    @abstractmethod
    def delete_file(self, commit: Commit, path: str) -> None:
        """Stage the deletion of a file, or of a directory and everything below it."""

    @abstractmethod
    def finish_commit(self, commit: Commit, *, expected_parent: str | None = None) -> Commit:
        """Land every staged change as one commit on the branch's current head; return it."""

    @abstractmethod
    def abort_commit(self, commit: Commit) -> None:
        """Drop an open commit and everything staged in it."""

    @abstractmethod
    def inspect_commit(self, repo: str, ref: str) -> Commit: ...

    @abstractmethod
    def list_commits(self, repo: str, ref: str, *, limit: int = 50, before: str | None = None) -> list[Commit]:
        """History from ``ref`` back, newest first; pass the last id seen as ``before`` for the next page."""

    # -- files -------------------------------------------------------------------
    @abstractmethod
    def list_dir(
        self, repo: str, ref: str, path: str = "/", *, limit: int = DEFAULT_PAGE, after: str | None = None
    ) -> FilePage:
        """One page of a directory, in path order; cost is one page, never the whole tree."""

    @abstractmethod
    def inspect_file(self, repo: str, ref: str, path: str) -> FileInfo: ...

    @abstractmethod
    def read_file(
        self, repo: str, ref: str, path: str, *, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """Stream a file's bytes in chunks, from ``offset``."""

    @abstractmethod
    def diff(self, repo: str, old_ref: str | None, new_ref: str, path: str = "/") -> list[FileChange]:
        """Files added, modified and deleted from ``old_ref`` (None: empty) to ``new_ref``."""

    def close(self) -> None:
        """Release connections; the backend is unusable afterwards."""

    # -- derived operations (shared by every backend) -------------------------------
    def put_file(self, commit: Commit, path: str, content: Content) -> None:
        self.put_files(commit, [(path, content)])

    def get_file(self, repo: str, ref: str, path: str) -> bytes:
        return b"".join(self.read_file(repo, ref, path))

    def read_tree(self, repo: str, ref: str, path: str = "/") -> Iterator[tuple[FileInfo, Iterator[bytes] | None]]:
        """``path`` and everything below it, depth first in path order (a directory, then what it holds:
        the order of a tar of it), each with its bytes: ``(info, chunks)`` for a file, ``(info, None)``
        for a directory (``/`` itself is left out). The bulk read of downloads and exports: a backend
        answers it in one pass where it can (a cluster: one ``GetFileTAR``), so a file's chunks must be
        read before the next entry is asked for. Every entry comes from the commit ``ref`` names when
        the read starts. NotFound when ``path`` does not exist."""
        top = self.inspect_file(repo, ref, path)
        commit = top.committed or ref
        for info in _depth_first(self.list_dir, repo, commit, top):
            yield info, (None if info.is_dir else self.read_file(repo, commit, info.path))

    def walk(self, repo: str, ref: str, path: str = "/", *, max_depth: int | None = None) -> Iterator[FileInfo]:
        """Every file and directory below ``path``: a directory's entries (in path order), then its subdirectories."""
        return walk_tree(self.list_dir, repo, ref, path, max_depth=max_depth)

    def glob(self, repo: str, ref: str, pattern: str) -> Iterator[FileInfo]:
        """Files and directories matching a Pachyderm glob (``/*``, ``/cats/*.png``, ``/**``)."""
        from .globbing import glob_plan

        base, depth, matches = glob_plan(pattern)
        try:
            self.inspect_file(repo, ref, base)
        except NotFound:  # a missing base directory simply matches nothing
            return
        for info in self.walk(repo, ref, base, max_depth=depth):
            if matches(info.path):
                yield info

    @contextmanager
    def commit(
        self,
        repo: str,
        branch: str,
        *,
        message: str = "",
        author: str = "",
        provenance: Iterable[Provenance] = (),
        metadata: dict[str, str] | None = None,
    ) -> Iterator["CommitWriter"]:
        """``with backend.commit(repo, branch, message=...) as c: c.put_file(...)``: one commit, or none on error."""
        opened = self.start_commit(
            repo, branch, message=message, author=author, provenance=provenance, metadata=metadata
        )
        writer = CommitWriter(self, opened)
        try:
            yield writer
        except BaseException:
            self.abort_commit(opened)
            raise
        writer.finished = self.finish_commit(opened)


class CommitWriter:
    """The open commit inside ``Backend.commit``; ``finished`` holds the landed commit afterwards."""

    def __init__(self, backend: Backend, commit: Commit) -> None:
        self.backend = backend
        self.commit = commit
        self.finished: Commit | None = None

    def put_file(self, path: str, content: Content) -> None:
        self.backend.put_file(self.commit, path, content)

    def put_files(self, items: Iterable[tuple[str, Content]]) -> int:
        return self.backend.put_files(self.commit, items)

    def delete_file(self, path: str) -> None:
        self.backend.delete_file(self.commit, path)
