"""Value types of the client that pfs does not have: mounts and their staged changes, downloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..pfs.model import _Json


@dataclass(frozen=True)
class Mount(_Json):
    """A mounted ``repo@branch`` (or commit): a folder at ``mountpoint``, read-only or read-write."""

    name: str
    repo: str
    branch: str | None
    commit: str | None  # the commit asked for (a commit mount), else None (follows the branch)
    base: str | None  # the commit the mount shows
    mode: str  # "ro" or "rw"
    presentation: str = ""  # "fuse" or "no-fuse"
    state: str = ""  # mounting, mounted, committing, error
    message: str = ""
    behind: int = 0  # commits on the branch head that the base does not have
    pending: int = 0  # staged file changes (rw)
    mountpoint: str = ""
    diverged: bool = False  # the branch was moved (rolled back) below the base: follow() moves with it
    head: str | None = None  # the branch's head when the server last looked

    @property
    def path(self) -> str:
        """The folder to read and write (same as ``mountpoint``)."""
        return self.mountpoint


@dataclass(frozen=True)
class PendingChange(_Json):
    """One staged change of a read-write mount, against its base commit."""

    path: str
    change: str  # added, modified, deleted
    size: int = 0
    old_size: int | None = None


@dataclass(frozen=True)
class PendingChanges(_Json):
    """The staged changes of a mount; empty when nothing was written."""

    name: str
    base: str | None
    changes: tuple[PendingChange, ...] = ()
    unsupported: tuple[str, ...] = ()  # symlinks / special files that are never committed

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[PendingChange]:  # type: ignore[override]
        return iter(self.changes)


@dataclass(frozen=True)
class Download(_Json):
    """What :meth:`Client.get` wrote: ``files`` files of ``bytes`` bytes in all below ``path`` (local),
    read from ``source`` at ``commit``."""

    source: str
    commit: str
    path: str
    files: int = 0
    bytes: int = 0
