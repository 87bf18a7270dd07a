"""Between pachd's messages and the model (requests from keys are built by ``pfs/wire.py``): replies read as ``Repo``,
``Commit`` and ``FileInfo``, and the description trailer where our commits keep what pachd has no
field for (author, provenance pairs, metadata, target and staging branch, start time)."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import betterproto
from pachyderm_sdk.api import pfs

from ..address import DEFAULT_PROJECT, is_commit_id, parse_ref, parse_repo
from ..errors import PfsError
from ..model import OPAQUE, Commit, FileInfo, Provenance, Repo
from ..wire import repo_key_of

#: Private branches open commits are staged on (hidden from every listing).
STAGING_PREFIX = "pachls-open-"
TRAILER = "\n\n---pachls---\n"
#: Set by the Pachyderm-API server of this package (pachd has no file count).
N_FILES_KEY = "pachls.io/n-files"


# -- the description trailer ---------------------------------------------------------------------
def encode_description(message: str, meta: dict) -> str:
    return message + TRAILER + json.dumps(meta, sort_keys=True, separators=(",", ":"))


def decode_description(description: str) -> tuple[str, dict | None]:
    """(message, our metadata or None for a commit made by another client)."""
    at = description.rfind(TRAILER)
    if at < 0:
        return description, None
    try:
        meta = json.loads(description[at + len(TRAILER):])
    except ValueError:
        return description, None
    return (description[:at], meta) if isinstance(meta, dict) else (description, None)


# -- reading replies -------------------------------------------------------------------------------
class Generations:
    """What the last two complete listings saw, by key: ``swap`` after each complete listing forgets
    what neither saw (a head that moved, a repo deleted), so it holds at most two listings' worth, however
    long it runs."""

    def __init__(self) -> None:
        self._current: dict = {}
        self._previous: dict = {}
        self._lock = threading.Lock()  # listings run on several worker threads

    def __len__(self) -> int:
        with self._lock:
            return len(self._current) + len(self._previous)

    def get(self, key):
        with self._lock:
            found = self._current.get(key)
            if found is None:
                found = self._previous.pop(key, None)
                if found is not None:
                    self._current[key] = found
            return found

    def put(self, key, value) -> None:
        with self._lock:
            self._current[key] = value

    def swap(self) -> None:
        with self._lock:
            self._previous, self._current = self._current, {}


class KeptDecoder:
    """A gRPC deserializer that decodes each distinct reply once (``Generations``: ``swap`` after each
    complete listing): a cluster answers a listing with the same bytes poll after poll, and betterproto
    decodes slowly. The messages it returns are shared: read them, never change them."""

    def __init__(self, message_class: type[betterproto.Message]) -> None:
        self.message_class = message_class
        self.kept = Generations()

    def __call__(self, data: bytes) -> betterproto.Message:
        found = self.kept.get(data)
        if found is None:
            found = self.message_class().parse(data)
            self.kept.put(data, found)
        return found


def is_set(msg) -> bool:
    """Whether an optional sub-message was present in a reply."""
    return msg is not None and betterproto.serialized_on_wire(msg)


def is_finished(info: pfs.CommitInfo) -> bool:
    return bool(info.finished) and info.finished.timestamp() > 0


def parent_id(info: pfs.CommitInfo) -> str | None:
    return info.parent_commit.id if is_set(info.parent_commit) and info.parent_commit.id else None


def head_id(info: pfs.BranchInfo) -> str | None:
    """The id of a branch's head commit, None for an empty branch."""
    return info.head.id if is_set(info.head) and info.head.id else None


def is_staging(name: str) -> bool:
    return name.startswith(STAGING_PREFIX)


def staging_of(info: pfs.CommitInfo) -> str:
    """The private branch a commit of ours was staged on (recorded in its description), or ''."""
    _, meta = decode_description(info.description)
    staging = meta.get("staging") if meta else None
    return staging if isinstance(staging, str) else ""


def branch_named(ref: str) -> str | None:
    """The branch a ref names as its head (``master``), or None (a commit id, ``master^2``)."""
    if not isinstance(ref, str):
        return None
    try:
        name, ancestors = parse_ref(ref)
    except PfsError:
        return None
    return None if ancestors or is_commit_id(name) else name


def to_commit(info: pfs.CommitInfo, key: str, branch: str | None = None) -> Commit:
    """Our Commit of a CommitInfo. pachd clears ``Commit.branch`` in every reply, so the branch is
    the one our commits record in their description, else ``branch`` (the caller asked for that
    branch's head), else None."""
    message, meta = decode_description(info.description)
    metadata = {k: v for k, v in (info.metadata or {}).items() if not k.startswith("pachls.io/")}
    if meta is not None:
        provenance = tuple(Provenance(r, c, b) for r, c, b in meta.get("provenance", []))
        author = meta.get("author", "")
        metadata = dict(meta.get("metadata", {}))
        branch = meta.get("branch") or branch
        started = datetime.fromisoformat(meta["started"]) if meta.get("started") else info.started
    else:
        # pachd clears the branch of a reply's commit and parent, not of its provenance (None if unset)
        provenance = tuple(
            Provenance(repo_key_of(p.repo), p.id, p.branch.name if is_set(p.branch) else None)
            for p in info.direct_provenance
        )
        author = info.created_by
        started = info.started
    finished = info.finished if is_set(info) and info.finished and info.finished.timestamp() > 0 else None
    size = info.details.size_bytes if is_set(info.details) else info.size_bytes_upper_bound
    try:
        n_files = int((info.metadata or {}).get(N_FILES_KEY, 0))
    except ValueError:
        n_files = 0
    return Commit(
        id=info.commit.id, repo=key, branch=branch, parent=parent_id(info), message=message, author=author,
        started=started, finished=finished, provenance=provenance,
        origin="AUTO" if info.origin and info.origin.kind == pfs.OriginKind.AUTO else "USER",
        size_bytes=size, n_files=n_files, metadata=metadata,
    )


def to_file_info(info: pfs.FileInfo, commit_id: str) -> FileInfo:
    is_dir = info.file_type == pfs.FileType.DIR
    path = info.file.path or "/"
    if is_dir and not path.endswith("/"):
        path += "/"
    return FileInfo(path=path, type="dir" if is_dir else "file", size=info.size_bytes,
                    hash=None if is_dir else (info.hash.hex() or None), committed=commit_id,
                    hash_kind=None if is_dir else OPAQUE)


def to_repo(info: pfs.RepoInfo) -> Repo:
    project = (info.repo.project.name if info.repo.project else "") or DEFAULT_PROJECT
    size = info.details.size_bytes if is_set(info.details) else info.size_bytes_upper_bound
    return Repo(name=info.repo.name, project=project, description=info.description,
                created=info.created if is_set(info) and info.created else None, size_bytes=size,
                branches=tuple(sorted(b.name for b in info.branches if not is_staging(b.name))))


# -- repo names ------------------------------------------------------------------------------------
def repo_key(repo: str) -> str:
    """The canonical key of a repo name (``images``, ``team/images``); InvalidName etc. if malformed."""
    return str(parse_repo(repo))
