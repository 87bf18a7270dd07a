"""Plain, JSON-ready values returned by the mount manager."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MOUNTING, MOUNTED, COMMITTING, ERROR, UNMOUNTED = "mounting", "mounted", "committing", "error", "unmounted"
RO, RW = "ro", "rw"
FUSE, NO_FUSE = "fuse", "no-fuse"
BEHIND_LIMIT = 1000  # how far back the history is read to count (or find) commits


class _Json:
    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.metadata.get("internal"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, (list, tuple)):
                value = [v.to_json() if hasattr(v, "to_json") else v for v in value]
            out[f.name] = value
        return out


@dataclass(frozen=True)
class Change(_Json):
    """One staged file change, against the mount's base commit."""

    path: str
    change: str  # "added", "modified" or "deleted"
    size: int  # bytes of the new content (0 for a deletion)
    old_size: int | None = None  # bytes in the base commit (None when added)
    source: Path | None = field(default=None, compare=False, metadata={"internal": True})


@dataclass(frozen=True)
class Changes(_Json):
    name: str
    base: str | None
    changes: tuple[Change, ...]
    unsupported: tuple[str, ...] = ()  # symlinks / special files found in a no-FUSE mount: never committed

    @property
    def added(self) -> list[Change]:
        return [c for c in self.changes if c.change == "added"]

    @property
    def modified(self) -> list[Change]:
        return [c for c in self.changes if c.change == "modified"]

    @property
    def deleted(self) -> list[Change]:
        return [c for c in self.changes if c.change == "deleted"]

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["counts"] = {k: len(getattr(self, k)) for k in ("added", "modified", "deleted")}
        return out


@dataclass
class MountRecord:
    """One row of the persistent mount table."""

    name: str
    repo: str
    branch: str | None
    commit: str | None  # fixed commit (commit mounts), else None
    mode: str
    base: str | None
    presentation: str


@dataclass(frozen=True)
class MountStatus(_Json):
    name: str
    repo: str
    branch: str | None  # None when a commit was mounted without a branch
    commit: str | None  # the commit asked for (a commit mount), else None (follows the branch)
    base: str | None  # the commit the mount shows (None: the branch has no commits yet)
    mode: str  # "ro" or "rw"
    presentation: str  # "fuse" or "no-fuse"
    state: str  # mounting, mounted, committing, error
    message: str = ""
    behind: int = 0  # commits on the branch since the base (capped at 1000); -1: base not in its history
    pending: int = 0  # staged file changes (rw)
    mountpoint: str = ""
    head: str | None = None  # the branch's head when status last looked (None for a fixed commit)
