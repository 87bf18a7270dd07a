"""Value types of the versioned data model (immutable, JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "to_json"):
        return value.to_json()
    return value


class _Json:
    def to_json(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def from_timestamp(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)


@dataclass(frozen=True)
class Repo(_Json):
    name: str
    project: str = "default"
    description: str = ""
    created: datetime | None = None
    size_bytes: int = 0  # of the default branch head
    branches: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.name if self.project == "default" else f"{self.project}/{self.name}"


@dataclass(frozen=True)
class Provenance(_Json):
    """One (repo, commit) pair a commit was derived from."""

    repo: str
    commit: str
    branch: str | None = None


@dataclass(frozen=True)
class Commit(_Json):
    id: str
    repo: str  # ``repo`` or ``project/repo``
    branch: str | None  # the branch it was made on; None where the store does not say (pachd: others' commits)
    parent: str | None
    message: str = ""
    author: str = ""
    started: datetime | None = None
    finished: datetime | None = None  # None while the commit is open
    provenance: tuple[Provenance, ...] = ()
    origin: str = "USER"  # USER for commits made by people, AUTO for branch-creation commits
    size_bytes: int = 0
    n_files: int = 0  # files in the commit; 0 where the store does not count them (pachd)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.finished is None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def __str__(self) -> str:
        return f"{self.repo}@{self.id}"


@dataclass(frozen=True)
class Branch(_Json):
    repo: str
    name: str
    head: Commit | None = None


@dataclass(frozen=True)
class BranchMove(_Json):
    """A recorded head move (rollback or fast-forward); history is never destroyed."""

    repo: str
    branch: str
    old_head: str | None
    new_head: str
    author: str
    time: datetime
    reason: str


#: ``FileInfo.hash_kind`` of a sha256 (hex) of the file's bytes: anyone can check it against the content.
SHA256 = "sha256"
#: ``FileInfo.hash_kind`` of an identity the store chose (pachd hashes its chunk references, not the bytes):
#: equal values within one store mean equal content, and nothing else can be read from it.
OPAQUE = "opaque"


@dataclass(frozen=True)
class FileInfo(_Json):
    """One file or directory of a commit.

    ``hash`` identifies a file's content *within the store that answered*; what it is depends on
    ``hash_kind``: ``sha256`` (the embedded store: the sha256 hex of the bytes) or ``opaque`` (a
    Pachyderm cluster, or ``jupyter pachls serve``: pachd's own hash, never a hash of the bytes).
    Code that needs to compare content with local bytes uses ``content_sha256`` and, when it is None,
    hashes the bytes itself (the mount cache does so while downloading).
    """

    path: str  # directories end with '/'
    type: str  # "file" or "dir"
    size: int  # bytes; for a directory, the bytes of everything below it
    hash: str | None = None  # the store's identity of the content (files only); see hash_kind
    committed: str | None = None  # id of the commit the info was read from
    hash_kind: str | None = SHA256  # SHA256 or OPAQUE: what ``hash`` is; None without a hash

    def __post_init__(self) -> None:
        if self.hash is None and self.hash_kind is not None:  # a kind of nothing says nothing
            object.__setattr__(self, "hash_kind", None)

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @property
    def content_sha256(self) -> str | None:
        """The sha256 hex of the bytes when the store said so, else None (compute it from the bytes)."""
        return self.hash if self.hash and self.hash_kind == SHA256 else None


@dataclass(frozen=True)
class FilePage(_Json):
    """One page of a directory listing; pass ``next`` back as ``after`` for the following page."""

    items: tuple[FileInfo, ...]
    next: str | None


@dataclass(frozen=True)
class FileChange(_Json):
    path: str
    change: str  # "added", "modified" or "deleted"
    old: FileInfo | None
    new: FileInfo | None
