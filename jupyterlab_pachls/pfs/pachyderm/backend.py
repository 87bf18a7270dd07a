"""``PachydermBackend``: the ``Backend`` interface on a Pachyderm cluster, through ``pachyderm-sdk``.

Configuration, as Pachyderm users expect: an explicit ``pachd_address``
(``grpc://host:30650`` or ``grpcs://...``) and optional ``auth_token``; else the
active context of ``config_path``, ``$PACH_CONFIG`` or ``~/.pachyderm/config.json``
(address, session token, CA certificates), as ``pachctl`` reads it. No call is
made at construction; the first operation waits at most ``connect_timeout``
seconds for the cluster and raises ``Unavailable`` otherwise (never hangs).

How the embedded store's semantics are kept on pachd, where they differ:

- **Open commits.** In pachd a commit's parent is fixed when it starts and the
  branch moves to the open commit at once. Our contract says a commit lands on
  the branch head *at finish time*, and readers of the branch never see an
  open commit. So ``start_commit`` opens the commit on a private staging branch
  ``pachls-open-<hex>`` (parent: the branch head at start) and ``put_files`` /
  ``delete_file`` write there (one ModifyFile stream per call, however many
  files). ``finish_commit`` then *lands* it: it starts a commit on the target
  branch (pachd picks the branch head as parent and blocks other landings on
  that branch until it is finished: "parent commit ... has not been finished",
  retried with backoff), checks ``expected_parent`` against that parent (a real
  compare-and-set: nobody else can land meanwhile), finishes the staged commit,
  and copies its changes (``DiffFile`` against its own parent: copies for
  added/modified files, deletions for deleted files and vanished directories)
  server-side into the landing commit (``CopyFile``, no file data moves), then
  finishes it and removes the staging branch. The landed commit therefore has a
  new id, which ``finish_commit`` returns; the id from ``start_commit`` stays
  resolvable (a finished commit off any branch) so finishing it twice is a
  ``Conflict``, as in the embedded store. An open commit is one whose staging
  branch still exists. Readers that find a landing commit at a branch head see
  its parent until it is finished.
- **Commit metadata.** Message, author, provenance pairs, the metadata dict,
  the target branch and the original start time are stored in the commit
  *description*: the message, then ``\\n\\n---pachls---\\n`` and one JSON line.
  pachd keeps provenance per branch (for pipelines) and has no field for an
  author, so the description is where a user commit has room; ``pachctl
  inspect commit`` shows it. Commits made by other clients (no such trailer)
  read back with their description as the message, ``created_by`` as author,
  their metadata and direct provenance.
- **Branch moves** (rollbacks) are recorded as JSON files in a small metadata
  repo ``pachls-meta`` (default project), one file per move under
  ``/branch-moves/<project>/<repo>/<branch>/``, written through the same commit
  path as everything else. It is hidden from ``list_repos``. The ``expected_head``
  check of ``move_branch`` is atomic within one process; pachd has no
  conditional branch update, so two processes racing to move the same branch
  can both pass it.
- **Files** hold pachd's own hash (hex), with ``hash_kind`` ``opaque``: pachd hashes its
  chunk references, not the bytes, so nothing here compares it with a hash of content (the
  mounts hash what they download). ``n_files`` comes from the Pachyderm-API server of this
  package (pachd has no file count and reports 0).
- **Branch in replies.** pachd clears ``Commit.branch`` in every reply, so nothing here reads
  it: our commits record their branch (and their staging branch) in the description, a branch's
  head is known from the branch asked for, and any other commit has ``branch`` None.
- **AUTO commits.** ``CreateBranch`` without a head makes an empty, finished ``AUTO`` commit
  that becomes the branch head; it shows as a commit of origin ``AUTO`` (in histories, as a
  mount's base, as the parent of the branch's first commit, as a rollback target). A commit on
  a branch that does not exist yet creates the branch with the landed commit (no AUTO commit,
  no parent), as the embedded store does.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import betterproto
import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs
from pachyderm_sdk.api.pfs.extension import ApiStub as PfsStub
from pachyderm_sdk.config import ConfigFile
from pachyderm_sdk.constants import GRPC_CHANNEL_OPTIONS

from ..address import DEFAULT_PROJECT, is_commit_id, normalize_path, parse_ref, parse_repo, validate_name
from ..backend import DEFAULT_PAGE, Backend, Content, check_page
from ..errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PfsError, Unavailable
from ..model import OPAQUE, Branch, BranchMove, Commit, FileChange, FileInfo, FilePage, Provenance, Repo, from_timestamp
from ..server.errors import from_rpc_error

STAGING_PREFIX = "pachls-open-"
META_REPO = "pachls-meta"
TRAILER = "\n\n---pachls---\n"
N_FILES_KEY = "pachls.io/n-files"
UPLOAD_CHUNK = 2 << 20  # bytes per ModifyFile message: small enough to keep memory flat
UNARY_TIMEOUT = 120.0
LAND_TIMEOUT = 120.0
#: While the cluster is known to be down, a call waits this long for it (not connect_timeout each).
DOWN_RECHECK = 1.0
#: Reconnection attempts are at most this far apart, so a cluster that comes back is used within seconds.
CHANNEL_OPTIONS = [*GRPC_CHANNEL_OPTIONS, ("grpc.initial_reconnect_backoff_ms", 250),
                   ("grpc.min_reconnect_backoff_ms", 250), ("grpc.max_reconnect_backoff_ms", 2000)]


class _CallOptions(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """The auth metadata on every call and a deadline on unary ones (a silent cluster cannot hang a caller).

    ``pachyderm_sdk``'s own interceptor turns some failures into ``ConnectionError`` / ``TypeError``;
    this one leaves every failure a ``grpc.RpcError``, which the backend maps to typed errors.
    """

    def __init__(self, metadata, timeout: float) -> None:
        self.metadata = list(metadata)
        self.timeout = timeout

    def _details(self, call_details, *, deadline: bool):
        call_details = call_details._replace(metadata=[*(call_details.metadata or ()), *self.metadata])
        if deadline and call_details.timeout is None:
            call_details = call_details._replace(timeout=self.timeout)
        return call_details

    def intercept_unary_unary(self, continuation, call_details, request):
        return continuation(self._details(call_details, deadline=True), request)

    def intercept_unary_stream(self, continuation, call_details, request):
        return continuation(self._details(call_details, deadline=False), request)

    def intercept_stream_unary(self, continuation, call_details, request_iterator):
        return continuation(self._details(call_details, deadline=False), request_iterator)

    def intercept_stream_stream(self, continuation, call_details, request_iterator):
        return continuation(self._details(call_details, deadline=False), request_iterator)


def _encode(message: str, meta: dict) -> str:
    return message + TRAILER + json.dumps(meta, sort_keys=True, separators=(",", ":"))


def _decode(description: str) -> tuple[str, dict | None]:
    at = description.rfind(TRAILER)
    if at < 0:
        return description, None
    try:
        meta = json.loads(description[at + len(TRAILER):])
    except ValueError:
        return description, None
    return (description[:at], meta) if isinstance(meta, dict) else (description, None)


def _set(msg) -> bool:
    """Whether an optional sub-message was present in a reply."""
    return msg is not None and betterproto.serialized_on_wire(msg)


def _is_staging(name: str) -> bool:
    return name.startswith(STAGING_PREFIX)


def _staging_of(info: pfs.CommitInfo) -> str:
    """The private branch a commit of ours was staged on (recorded in its description), or ''."""
    _, meta = _decode(info.description)
    staging = meta.get("staging") if meta else None
    return staging if isinstance(staging, str) else ""


def _branch_named(ref: str) -> str | None:
    """The branch a ref names as its head (``master``), or None (a commit id, ``master^2``)."""
    if not isinstance(ref, str):
        return None
    try:
        name, ancestors = parse_ref(ref)
    except PfsError:
        return None
    return None if ancestors or is_commit_id(name) else name


class PachydermBackend(Backend):
    kind = "pachyderm"

    def __init__(self, pachd_address: str | None = None, auth_token: str | None = None,
                 config_path: str | os.PathLike | None = None, *, connect_timeout: float = 5.0) -> None:
        root_certs = None
        if not pachd_address:
            path = Path(config_path or os.environ.get("PACH_CONFIG") or "~/.pachyderm/config.json").expanduser()
            try:
                context = ConfigFile.from_path(path).active_context
            except FileNotFoundError:
                raise Unavailable(f"no pachd_address given and no Pachyderm config at {path}", path=str(path)) from None
            except Exception as exc:  # malformed config
                raise InvalidArgument(f"cannot read the Pachyderm config {path}: {exc}", path=str(path)) from None
            pachd_address = context.active_pachd_address
            auth_token = auth_token or context.session_token
            root_certs = context.server_cas_decoded
            if not pachd_address:
                raise InvalidArgument(f"the active context of {path} has no pachd address", path=str(path))
        try:
            client = Client.from_pachd_address(pachd_address, auth_token=auth_token, root_certs=root_certs)
        except ValueError as exc:
            raise InvalidArgument(f"invalid pachd address {pachd_address!r}: {exc}", address=pachd_address) from None
        self.client = client
        self._address = pachd_address if "://" in pachd_address else f"grpc://{pachd_address}"
        self.connect_timeout = connect_timeout
        if client.root_certs is not None:
            raw = grpc.secure_channel(client.address, grpc.ssl_channel_credentials(client.root_certs),
                                      options=CHANNEL_OPTIONS)
        else:
            raw = grpc.insecure_channel(client.address, options=CHANNEL_OPTIONS)
        self._raw = raw
        self._state = None
        self._down_at: float | None = None  # when a call last found the cluster unreachable
        raw.subscribe(self._on_state, try_to_connect=False)
        channel = grpc.intercept_channel(raw, _CallOptions(client._build_metadata(), UNARY_TIMEOUT))
        self.pfs = PfsStub(channel, get_transaction_id=lambda: None)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        #: Commits a failed call could not clean up because the cluster was gone: (repo key, commit id,
        #: staging branch or None for a landing commit). Cleaned by the next commit once it answers.
        self._orphans: set[tuple[str, str, str | None]] = set()
        self._closed = False

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return self._address

    def _on_state(self, state) -> None:
        self._state = state

    def _unreachable(self, waited: float, reason: str = "") -> Unavailable:
        self._down_at = time.monotonic()
        why = f" ({reason})" if reason else ""
        return Unavailable(
            f"the Pachyderm API at {self._address} does not answer{why}; waited {waited:g} s. Check that pachd "
            "(or `jupyter pachls serve`) runs there and is reachable, or switch the backend in Settings. "
            "Nothing was changed by the failed call; the connection is retried on the next request.",
            address=self._address)

    def _ready(self) -> None:
        if self._closed:
            raise Unavailable("the backend is closed")
        if self._state == grpc.ChannelConnectivity.READY:
            return
        # Known down: look again briefly instead of making every call of a request wait the full timeout.
        down = self._down_at is not None and time.monotonic() - self._down_at < self.connect_timeout
        timeout = min(DOWN_RECHECK, self.connect_timeout) if down else self.connect_timeout
        try:
            grpc.channel_ready_future(self._raw).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise self._unreachable(timeout) from None
        self._down_at = None

    def _error(self, exc: grpc.RpcError, what: str) -> PfsError:
        error = from_rpc_error(exc, what)
        if isinstance(error, Unavailable) and "address" not in error.details:
            code = exc.code() if hasattr(exc, "code") else None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                return self._unreachable(0, f"{what} failed: {exc.details() if hasattr(exc, 'details') else exc}")
        return error

    def _rpc(self, what: str, fn, **kwargs):
        self._ready()
        try:
            return fn(**kwargs)
        except grpc.RpcError as exc:
            raise self._error(exc, what) from None

    def _stream(self, what: str, fn, **kwargs) -> Iterator:
        self._ready()
        try:
            yield from fn(**kwargs)
        except grpc.RpcError as exc:
            raise self._error(exc, what) from None

    def close(self) -> None:
        self._closed = True
        try:
            self._raw.unsubscribe(self._on_state)
        except Exception:
            pass
        self._raw.close()

    def _lock(self, key: str, branch: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((key, branch), threading.Lock())

    # -- messages ------------------------------------------------------------------------------
    @staticmethod
    def _key(repo: str) -> str:
        return str(parse_repo(repo))

    @staticmethod
    def _repo_msg(key: str) -> pfs.Repo:
        address = parse_repo(key)
        return pfs.Repo(name=address.repo, type="user", project=pfs.Project(name=address.project))

    def _branch_msg(self, key: str, name: str) -> pfs.Branch:
        return pfs.Branch(repo=self._repo_msg(key), name=name)

    def _commit_msg(self, key: str, commit_id: str, branch: str | None = None) -> pfs.Commit:
        msg = pfs.Commit(repo=self._repo_msg(key), id=commit_id)
        if branch:
            msg.branch = self._branch_msg(key, branch)
        return msg

    @staticmethod
    def _repo_key_of(repo: pfs.Repo) -> str:
        project = (repo.project.name if repo.project else "") or DEFAULT_PROJECT
        return repo.name if project == DEFAULT_PROJECT else f"{project}/{repo.name}"

    def _commit(self, info: pfs.CommitInfo, key: str, branch: str | None = None) -> Commit:
        """Our Commit of a CommitInfo. pachd clears ``Commit.branch`` in every reply, so the branch is
        the one our commits record in their description, else ``branch`` (the caller asked for that
        branch's head), else None."""
        message, meta = _decode(info.description)
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
                Provenance(self._repo_key_of(p.repo), p.id, p.branch.name if _set(p.branch) else None)
                for p in info.direct_provenance
            )
            author = info.created_by
            started = info.started
        parent = info.parent_commit.id if _set(info.parent_commit) and info.parent_commit.id else None
        finished = info.finished if _set(info) and info.finished and info.finished.timestamp() > 0 else None
        size = info.details.size_bytes if _set(info.details) else info.size_bytes_upper_bound
        try:
            n_files = int((info.metadata or {}).get(N_FILES_KEY, 0))
        except ValueError:
            n_files = 0
        return Commit(
            id=info.commit.id, repo=key, branch=branch, parent=parent, message=message, author=author,
            started=started, finished=finished, provenance=provenance,
            origin="AUTO" if info.origin and info.origin.kind == pfs.OriginKind.AUTO else "USER",
            size_bytes=size, n_files=n_files, metadata=metadata,
        )

    @staticmethod
    def _is_finished(info: pfs.CommitInfo) -> bool:
        return bool(info.finished) and info.finished.timestamp() > 0

    def _file_info(self, info: pfs.FileInfo, commit_id: str) -> FileInfo:
        is_dir = info.file_type == pfs.FileType.DIR
        path = info.file.path or "/"
        if is_dir and not path.endswith("/"):
            path += "/"
        return FileInfo(path=path, type="dir" if is_dir else "file", size=info.size_bytes,
                        hash=None if is_dir else (info.hash.hex() or None), committed=commit_id,
                        hash_kind=None if is_dir else OPAQUE)

    # -- resolving refs ------------------------------------------------------------------------
    def _inspect(self, key: str, commit_id: str, wait=None) -> pfs.CommitInfo:
        kwargs = {"commit": self._commit_msg(key, commit_id)}
        if wait is not None:
            kwargs["wait"] = wait
        return self._rpc("InspectCommit", self.pfs.inspect_commit, **kwargs)

    def _head(self, key: str, branch: str) -> pfs.CommitInfo | None:
        """The finished head of ``branch`` (None if it has none); NotFound if there is no such branch."""
        info = self._rpc("InspectBranch", self.pfs.inspect_branch, branch=self._branch_msg(key, branch))
        if not _set(info.head) or not info.head.id:
            return None
        head = self._inspect(key, info.head.id)
        if not self._is_finished(head):  # a landing in progress: readers still see its parent
            if not _set(head.parent_commit) or not head.parent_commit.id:
                return None
            head = self._inspect(key, head.parent_commit.id)
        return head

    def _resolve(self, repo: str, ref: str, *, allow_empty: bool = False) -> tuple[str, pfs.CommitInfo | None]:
        key = self._key(repo)
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("a branch name or commit id is required", ref=repr(ref))
        name, ancestors = parse_ref(ref)
        if is_commit_id(name):
            info = self._inspect(key, name)
        else:
            info = self._head(key, name)
            if info is None:
                if allow_empty and not ancestors:
                    return key, None
                raise NotFound(f"branch {name} of repo {key} has no commits", repo=key, branch=name)
        if ancestors:
            chain = list(self._stream("ListCommit", self.pfs.list_commit, repo=self._repo_msg(key),
                                      to=self._commit_msg(key, info.commit.id), number=ancestors + 1, all=True))
            if len(chain) <= ancestors:
                raise NotFound(f"{ref} goes back {ancestors} commits but the history has only {len(chain) - 1}",
                               ref=ref)
            info = chain[ancestors]
        return key, info

    def _finished(self, repo: str, ref: str) -> tuple[str, pfs.CommitInfo | None]:
        key, info = self._resolve(repo, ref, allow_empty=True)
        if info is not None and not self._is_finished(info):
            raise Conflict(f"commit {info.commit.id} is still open; its files can be read once it is finished",
                           commit=info.commit.id)
        return key, info

    # -- repos ---------------------------------------------------------------------------------
    def _repo(self, info: pfs.RepoInfo) -> Repo:
        project = (info.repo.project.name if info.repo.project else "") or DEFAULT_PROJECT
        size = info.details.size_bytes if _set(info.details) else info.size_bytes_upper_bound
        return Repo(name=info.repo.name, project=project, description=info.description,
                    created=info.created if _set(info) and info.created else None, size_bytes=size,
                    branches=tuple(sorted(b.name for b in info.branches if not _is_staging(b.name))))

    def create_repo(self, repo: str, description: str = "") -> Repo:
        key = self._key(repo)
        if not isinstance(description, str):
            raise InvalidArgument("description must be a string")
        project = parse_repo(key).project
        if project != DEFAULT_PROJECT:
            try:
                self._rpc("CreateProject", self.pfs.create_project, project=pfs.Project(name=project))
            except AlreadyExists:
                pass
        self._rpc("CreateRepo", self.pfs.create_repo, repo=self._repo_msg(key), description=description)
        return self.inspect_repo(key)

    def inspect_repo(self, repo: str) -> Repo:
        key = self._key(repo)
        return self._repo(self._rpc("InspectRepo", self.pfs.inspect_repo, repo=self._repo_msg(key)))

    def list_repos(self) -> list[Repo]:
        repos = [self._repo(i) for i in self._stream("ListRepo", self.pfs.list_repo, type="user")]
        repos = [r for r in repos if not (r.project == DEFAULT_PROJECT and r.name == META_REPO)]
        return sorted(repos, key=lambda r: (r.project, r.name))

    def delete_repo(self, repo: str) -> None:
        key = self._key(repo)
        self.inspect_repo(key)
        self._rpc("DeleteRepo", self.pfs.delete_repo, repo=self._repo_msg(key), force=True)
        try:
            self.inspect_repo(META_REPO)
        except NotFound:
            return
        address = parse_repo(key)
        prefix = f"/branch-moves/{address.project}/{address.repo}"
        try:
            self.inspect_file(META_REPO, "master", prefix)
        except NotFound:
            return
        with self.commit(META_REPO, "master", message=f"forget branch moves of deleted repo {key}") as c:
            c.delete_file(prefix)

    # -- branches ------------------------------------------------------------------------------
    def _branch(self, key: str, name: str) -> Branch:
        head = self._head(key, name)
        return Branch(repo=key, name=name, head=self._commit(head, key, name) if head is not None else None)

    def create_branch(self, repo: str, branch: str, head: str | None = None) -> Branch:
        validate_name(branch, "branch")
        key = self.inspect_repo(repo).key
        try:
            self._rpc("InspectBranch", self.pfs.inspect_branch, branch=self._branch_msg(key, branch))
        except NotFound:
            pass
        else:
            raise AlreadyExists(f"branch {branch} already exists in repo {key}", repo=key, branch=branch)
        kwargs = {"branch": self._branch_msg(key, branch)}
        if head is not None:
            _, info = self._resolve(key, head)
            if not self._is_finished(info):
                raise Conflict(f"commit {info.commit.id} is still open; a branch can only point at a finished commit")
            kwargs["head"] = self._commit_msg(key, info.commit.id)
        self._rpc("CreateBranch", self.pfs.create_branch, **kwargs)
        return self.inspect_branch(key, branch)

    def inspect_branch(self, repo: str, branch: str) -> Branch:
        validate_name(branch, "branch")
        return self._branch(self._key(repo), branch)

    def list_branches(self, repo: str | None = None) -> list[Branch]:
        keys = [self.inspect_repo(repo).key] if repo is not None else [r.key for r in self.list_repos()]
        result = []
        for key in keys:
            infos = list(self._stream("ListBranch", self.pfs.list_branch, repo=self._repo_msg(key)))
            for info in sorted(infos, key=lambda i: i.branch.name):
                if not _is_staging(info.branch.name):
                    result.append(self._branch(key, info.branch.name))
        return result

    def delete_branch(self, repo: str, branch: str) -> None:
        found = self.inspect_branch(repo, branch)
        self._rpc("DeleteBranch", self.pfs.delete_branch, branch=self._branch_msg(found.repo, branch), force=True)

    def move_branch(self, repo: str, branch: str, to: str, *, expected_head: str | None = None,
                    author: str = "", reason: str = "rollback") -> Branch:
        validate_name(branch, "branch")
        key, target = self._resolve(repo, to)
        if not self._is_finished(target):
            raise Conflict(f"commit {target.commit.id} is still open; a branch can only point at a finished commit")
        with self._lock(key, branch):
            current = self._head(key, branch)
            old = current.commit.id if current is not None else None
            if expected_head is not None and old != expected_head:
                raise Conflict(f"branch {branch} moved: its head is {old}, not {expected_head}",
                               branch=branch, head=old, expected=expected_head)
            self._rpc("CreateBranch", self.pfs.create_branch, branch=self._branch_msg(key, branch),
                      head=self._commit_msg(key, target.commit.id))
        self._record_move(key, branch, old, target.commit.id, str(author), str(reason))
        return self.inspect_branch(key, branch)

    def _moves_dir(self, key: str, branch: str) -> str:
        address = parse_repo(key)
        return f"/branch-moves/{address.project}/{address.repo}/{branch}"

    def _record_move(self, key: str, branch: str, old: str | None, new: str, author: str, reason: str) -> None:
        try:
            self.create_repo(META_REPO, description="jupyterlab-pachls records (branch moves)")
        except AlreadyExists:
            pass
        now = time.time()
        record = {"repo": key, "branch": branch, "old_head": old, "new_head": new, "author": author,
                  "time": now, "reason": reason}
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        with self.commit(META_REPO, "master", message=f"move {key}@{branch} to {new}", author=author) as c:
            c.put_file(f"{self._moves_dir(key, branch)}/{name}", json.dumps(record).encode())

    def branch_moves(self, repo: str, branch: str) -> list[BranchMove]:
        key = self.inspect_repo(repo).key
        try:
            files = [i for i in self.walk(META_REPO, "master", self._moves_dir(key, branch), max_depth=1)
                     if not i.is_dir]
        except NotFound:
            return []
        moves = []
        for info in sorted(files, key=lambda i: i.path, reverse=True):
            r = json.loads(self.get_file(META_REPO, "master", info.path))
            moves.append(BranchMove(key, branch, r["old_head"], r["new_head"], r["author"],
                                    from_timestamp(r["time"]), r["reason"]))
        return moves

    # -- commits -------------------------------------------------------------------------------
    def start_commit(self, repo: str, branch: str, *, message: str = "", author: str = "",
                     provenance: Iterable[Provenance] = (), metadata: dict[str, str] | None = None) -> Commit:
        validate_name(branch, "branch")
        key = self._key(repo)
        if not isinstance(message, str) or not isinstance(author, str):
            raise InvalidArgument("message and author must be strings")
        metadata = dict(metadata or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise InvalidArgument("commit metadata must map strings to strings")
        key = self.inspect_repo(key).key
        if self._orphans:
            self._clean_orphans()
        resolved = []
        for item in provenance:
            if not isinstance(item, Provenance):
                raise InvalidArgument("provenance items must be Provenance(repo, commit)")
            pkey, info = self._resolve(item.repo, item.commit)
            resolved.append([item.repo, info.commit.id, item.branch or _branch_named(item.commit)
                             or self._commit(info, pkey).branch])
        try:
            head = self._head(key, branch)
        except NotFound:
            # Left to the landing commit to create: pachd gives a branch made by CreateBranch without
            # a head an empty AUTO commit, which would become the parent of this first commit.
            head = None
        staging = STAGING_PREFIX + uuid.uuid4().hex
        # pachd answers with Commit.branch cleared: the staging branch is known from here on.
        meta = {"branch": branch, "author": author, "provenance": resolved, "metadata": metadata,
                "staging": staging}
        kwargs = {"branch": self._branch_msg(key, staging), "description": _encode(message, meta)}
        if head is not None:
            kwargs["parent"] = self._commit_msg(key, head.commit.id)
        try:
            opened = self._rpc("StartCommit", self.pfs.start_commit, **kwargs)
            return self._commit(self._inspect(key, opened.id), key)
        except Unavailable:
            # the commit may have been opened with the reply lost: drop it once the cluster answers
            self._orphans.add((key, "", staging))
            raise

    def _staged(self, commit: Commit) -> tuple[str, pfs.CommitInfo, str]:
        """(repo key, info, staging branch) of an open commit; NotFound / Conflict otherwise."""
        if not isinstance(commit, Commit):
            raise InvalidArgument("expected a Commit returned by start_commit")
        key = self._key(commit.repo)
        info = self._inspect(key, commit.id)
        staging = _staging_of(info)
        if not _is_staging(staging):
            if self._is_finished(info):
                raise Conflict(f"commit {commit.id} is already finished; start a new commit", commit=commit.id)
            raise InvalidArgument(f"commit {commit.id} was not opened by start_commit", commit=commit.id)
        if self._is_finished(info):
            try:
                self._rpc("InspectBranch", self.pfs.inspect_branch, branch=self._branch_msg(key, staging))
            except NotFound:
                raise Conflict(f"commit {commit.id} is already finished; start a new commit",
                               commit=commit.id) from None
        return key, info, staging

    def _modify(self, key: str, commit_id: str, branch: str | None, ops: Iterator[pfs.ModifyFileRequest]) -> None:
        """One ModifyFile stream; an exception raised while producing requests is re-raised as itself."""
        failure: list[BaseException] = []

        def requests():
            yield pfs.ModifyFileRequest(set_commit=self._commit_msg(key, commit_id, branch))
            try:
                yield from ops
            except BaseException as exc:
                failure.append(exc)
                raise

        self._ready()
        try:
            self.pfs.modify_file(requests())
        except grpc.RpcError as exc:
            if failure:
                raise failure[0] from None
            raise self._error(exc, "ModifyFile") from None
        if failure:
            raise failure[0]

    @staticmethod
    def _chunks(content: Content) -> Iterator[bytes]:
        if isinstance(content, (bytes, bytearray, memoryview)):
            view = memoryview(content)
            for start in range(0, len(view), UPLOAD_CHUNK):
                yield bytes(view[start:start + UPLOAD_CHUNK])
            return
        if isinstance(content, os.PathLike):
            with open(content, "rb") as source:
                while chunk := source.read(UPLOAD_CHUNK):
                    yield chunk
            return
        while chunk := content.read(UPLOAD_CHUNK):
            if isinstance(chunk, str):
                raise InvalidArgument("file content must be binary, not text")
            yield chunk

    @staticmethod
    def _check_content(content: object) -> None:
        if not (isinstance(content, (bytes, bytearray, memoryview, os.PathLike)) or hasattr(content, "read")):
            raise InvalidArgument(f"file content must be bytes, a binary file or a path, not {type(content).__name__}")

    def put_files(self, commit: Commit, items: Iterable[tuple[str, Content]]) -> int:
        key, _info, staging = self._staged(commit)
        if isinstance(items, (list, tuple)):  # a sequence is checked whole before anything is sent
            for path, content in items:
                normalize_path(path, allow_root=False)
                self._check_content(content)
        count = 0

        def ops():
            nonlocal count
            for path, content in items:
                path = normalize_path(path, allow_root=False)
                self._check_content(content)
                yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path))
                yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=b""))
                for chunk in self._chunks(content):
                    yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=chunk))
                count += 1

        self._modify(key, commit.id, staging, ops())
        return count

    def delete_file(self, commit: Commit, path: str) -> None:
        key, _info, staging = self._staged(commit)
        path = normalize_path(path)
        paths = [path] if path == "/" else [path, path + "/"]
        self._modify(key, commit.id, staging, iter([pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=p))
                                                    for p in paths]))

    def abort_commit(self, commit: Commit) -> None:
        try:
            key, info, staging = self._staged(commit)
        except Unavailable:
            # Cleaned up by the next commit once the cluster answers; the branch never showed it.
            if isinstance(commit, Commit):
                self._orphans.add((self._key(commit.repo), commit.id, STAGING_PREFIX))
            raise
        try:
            if not self._is_finished(info):
                self._rpc("DropCommitSet", self.pfs.drop_commit_set, commit_set=pfs.CommitSet(id=commit.id))
            self._rpc("DeleteBranch", self.pfs.delete_branch, branch=self._branch_msg(key, staging), force=True)
        except Unavailable:
            self._orphans.add((key, commit.id, staging))
            raise

    def _clean_orphans(self) -> None:
        """Drop what failed calls left behind while the cluster was gone: open staged commits with their
        staging branches, and unfinished landing commits (which would block their branch). A landing
        commit that did finish (its reply was lost) is a landed commit and is kept."""
        for orphan in sorted(list(self._orphans), key=str):
            key, commit_id, staging = orphan
            try:
                if not commit_id:  # only the staging branch is known
                    try:
                        branch = self._rpc("InspectBranch", self.pfs.inspect_branch,
                                           branch=self._branch_msg(key, staging))
                    except NotFound:
                        self._orphans.discard((key, commit_id, staging))
                        continue
                    if _set(branch.head) and branch.head.id:
                        commit_id = branch.head.id
                    else:
                        self._rpc("DeleteBranch", self.pfs.delete_branch, branch=self._branch_msg(key, staging),
                                  force=True)
                        self._orphans.discard((key, "", staging))
                        continue
                try:
                    info = self._inspect(key, commit_id)
                except NotFound:
                    self._orphans.discard((key, commit_id, staging))
                    continue
                if staging == STAGING_PREFIX:  # not known when the call failed
                    branch = _staging_of(info)
                    staging = branch if _is_staging(branch) else None
                    if staging is None:
                        self._orphans.discard((key, commit_id, STAGING_PREFIX))
                        continue
                if not self._is_finished(info):
                    self._rpc("DropCommitSet", self.pfs.drop_commit_set, commit_set=pfs.CommitSet(id=commit_id))
                if staging:
                    self._rpc("DeleteBranch", self.pfs.delete_branch, branch=self._branch_msg(key, staging),
                              force=True)
            except Unavailable:
                return  # still gone: try again next time
            except PfsError:
                pass
            # this one, and others naming the same commit or staging branch (None names no branch)
            for done in [o for o in list(self._orphans)
                         if o == orphan or (commit_id and o[1] == commit_id) or (staging and o[2] == staging)]:
                self._orphans.discard(done)

    def _wait_finished(self, key: str, commit_id: str) -> pfs.CommitInfo:
        info = self._inspect(key, commit_id, wait=pfs.CommitState.FINISHED)
        if info.error:
            raise Conflict(f"commit {commit_id} failed: {info.error}", commit=commit_id, error=info.error)
        return info

    def finish_commit(self, commit: Commit, *, expected_parent: str | None = None) -> Commit:
        if self._orphans:
            self._clean_orphans()
        key, staged, staging = self._staged(commit)
        message, meta = _decode(staged.description)
        meta = dict(meta or {})
        meta.pop("staging", None)  # the landed commit is on the branch itself
        target = meta.get("branch") or commit.branch
        meta["started"] = staged.started.isoformat() if staged.started else None
        meta["staged"] = commit.id
        with self._lock(key, target):
            if expected_parent is not None:
                # Checked before a landing commit exists too: subscribers of the branch (SubscribeCommit)
                # would see a landing commit that is then dropped.
                try:
                    current = self._head(key, target)
                except NotFound:
                    current = None
                head = current.commit.id if current is not None else None
                if head != expected_parent:
                    raise Conflict(
                        f"branch {target} moved to {head} (expected {expected_parent}); the commit stays open",
                        branch=target, head=head, expected=expected_parent)
            landing = self._start_landing(key, target, _encode(message, meta))
            try:
                linfo = self._inspect(key, landing)
                parent = linfo.parent_commit.id if _set(linfo.parent_commit) and linfo.parent_commit.id else None
                if expected_parent is not None and parent != expected_parent:
                    raise Conflict(
                        f"branch {target} moved to {parent} (expected {expected_parent}); the commit stays open",
                        branch=target, head=parent, expected=expected_parent)
                if not self._is_finished(staged):
                    self._rpc("FinishCommit", self.pfs.finish_commit, commit=self._commit_msg(key, commit.id))
                    self._wait_finished(key, commit.id)
                self._modify(key, landing, target, self._replay(key, staged, commit.id))
                self._rpc("FinishCommit", self.pfs.finish_commit, commit=self._commit_msg(key, landing))
                landed = self._wait_finished(key, landing)
            except BaseException:
                try:
                    self._drop_landing(key, landing)
                except Unavailable:
                    self._orphans.add((key, landing, None))
                except PfsError:
                    pass
                raise
        try:
            self._rpc("DeleteBranch", self.pfs.delete_branch, branch=self._branch_msg(key, staging), force=True)
        except Unavailable:
            self._orphans.add((key, commit.id, staging))  # landed; only the staging branch is left
        return self._commit(landed, key)

    def _drop_landing(self, key: str, landing: str) -> None:
        """Drop a landing commit that did not finish (one that finished landed: it stays)."""
        if not self._is_finished(self._inspect(key, landing)):
            self._rpc("DropCommitSet", self.pfs.drop_commit_set, commit_set=pfs.CommitSet(id=landing))

    def _start_landing(self, key: str, target: str, description: str) -> str:
        """Start the landing commit on ``target``; waits while another landing holds the branch."""
        deadline = time.monotonic() + LAND_TIMEOUT
        delay = 0.01
        while True:
            self._ready()
            try:
                return self.pfs.start_commit(branch=self._branch_msg(key, target), description=description).id
            except grpc.RpcError as exc:
                if "has not been finished" not in (exc.details() or ""):
                    raise self._error(exc, "StartCommit") from None
                if time.monotonic() > deadline:
                    if self._drop_stale_landing(key, target):
                        deadline = time.monotonic() + LAND_TIMEOUT
                        continue
                    raise self._error(exc, "StartCommit") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _drop_stale_landing(self, key: str, target: str) -> bool:
        """After waiting LAND_TIMEOUT for the branch: drop the unfinished landing commit at its head if it
        is one of ours (a client that died mid-landing left it; it was never visible to readers)."""
        info = self._rpc("InspectBranch", self.pfs.inspect_branch, branch=self._branch_msg(key, target))
        if not _set(info.head) or not info.head.id:
            return False
        head = self._inspect(key, info.head.id)
        _, meta = _decode(head.description)
        if self._is_finished(head) or not meta or "staged" not in meta:
            return False
        self._rpc("DropCommitSet", self.pfs.drop_commit_set, commit_set=pfs.CommitSet(id=head.commit.id))
        return True

    def _replay(self, key: str, staged: pfs.CommitInfo, staged_id: str) -> Iterator[pfs.ModifyFileRequest]:
        """The staged commit's changes against its own parent, as deletions then server-side copies."""
        base = staged.parent_commit.id if _set(staged.parent_commit) and staged.parent_commit.id else None
        request = {"new_file": pfs.File(commit=self._commit_msg(key, staged_id), path="/")}
        if base is not None:
            request["old_file"] = pfs.File(commit=self._commit_msg(key, base), path="/")
        copies, deletes = [], []
        for change in self._stream("DiffFile", self.pfs.diff_file, **request):
            if _set(change.new_file) and change.new_file.file.path:
                if change.new_file.file_type != pfs.FileType.DIR:
                    copies.append(change.new_file.file.path)
            elif _set(change.old_file) and change.old_file.file_type != pfs.FileType.DIR:
                deletes.append(change.old_file.file.path)
        vanished: dict[str, bool] = {}

        def gone(directory: str) -> bool:
            if directory not in vanished:
                try:
                    self._rpc("InspectFile", self.pfs.inspect_file,
                              file=pfs.File(commit=self._commit_msg(key, staged_id), path=directory))
                    vanished[directory] = False
                except NotFound:
                    vanished[directory] = True
            return vanished[directory]

        removed: set[str] = set()
        for path in sorted(deletes):
            top = None
            parts = path.strip("/").split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/" + "/".join(parts[:depth])
                if gone(directory):
                    top = directory
                    break
            target = top or path
            if target in removed or any(target.startswith(r + "/") for r in removed):
                continue
            removed.add(target)
            yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=target))
            if top:
                yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=top + "/"))
        for path in copies:
            yield pfs.ModifyFileRequest(copy_file=pfs.CopyFile(
                dst=path, src=pfs.File(commit=self._commit_msg(key, staged_id), path=path)))

    def inspect_commit(self, repo: str, ref: str) -> Commit:
        key, info = self._resolve(repo, ref)
        return self._commit(info, key, _branch_named(ref))

    def list_commits(self, repo: str, ref: str, *, limit: int = 50, before: str | None = None) -> list[Commit]:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidArgument("limit must be a positive integer", limit=limit)
        key, info = self._resolve(repo, ref, allow_empty=True)
        if before is not None:
            _, cursor = self._resolve(key, before)
            start = cursor.parent_commit.id if _set(cursor.parent_commit) and cursor.parent_commit.id else None
        else:
            start = info.commit.id if info is not None else None
        if start is None:
            return []
        head_of = _branch_named(ref) if before is None else None  # only the first is the branch's head
        return [self._commit(i, key, head_of if n == 0 else None) for n, i in enumerate(self._stream(
            "ListCommit", self.pfs.list_commit, repo=self._repo_msg(key), to=self._commit_msg(key, start),
            number=limit, all=True))]

    # -- files ---------------------------------------------------------------------------------
    def _file(self, key: str, commit_id: str, path: str) -> pfs.File:
        return pfs.File(commit=self._commit_msg(key, commit_id), path=path)

    def list_dir(self, repo: str, ref: str, path: str = "/", *, limit: int = DEFAULT_PAGE,
                 after: str | None = None) -> FilePage:
        path = check_page(path, limit, after)
        key, info = self._finished(repo, ref)
        if info is None:
            if path == "/":
                return FilePage(items=(), next=None)
            raise NotFound(f"{path} not found: the branch has no commits", path=path)
        cid = info.commit.id
        if path != "/":
            found = self.inspect_file(key, cid, path)
            if not found.is_dir:
                raise InvalidArgument(f"{path} is a file, not a directory", path=path)
        kwargs = {"file": self._file(key, cid, path), "number": limit + 1}
        if after:
            kwargs["pagination_marker"] = self._file(key, cid, after)
        items = [self._file_info(i, cid) for i in self._stream("ListFile", self.pfs.list_file, **kwargs)]
        more = len(items) > limit
        items = items[:limit]
        return FilePage(items=tuple(items), next=items[-1].path if more else None)

    def inspect_file(self, repo: str, ref: str, path: str) -> FileInfo:
        path = normalize_path(path)
        key, info = self._finished(repo, ref)
        if info is None:
            if path == "/":
                return FileInfo(path="/", type="dir", size=0, committed=None)
            raise NotFound(f"{path} not found in {key}@{ref}", path=path)
        cid = info.commit.id
        found = self._rpc("InspectFile", self.pfs.inspect_file, file=self._file(key, cid, path))
        return self._file_info(found, cid)

    def read_file(self, repo: str, ref: str, path: str, *, offset: int = 0,
                  length: int | None = None) -> Iterator[bytes]:
        if not isinstance(offset, int) or offset < 0 or (
            length is not None and (not isinstance(length, int) or length < 0)
        ):
            raise InvalidArgument("offset and length must be non-negative integers")
        info = self.inspect_file(repo, ref, path)
        if info.is_dir:
            raise InvalidArgument(f"{path} is a directory", path=path)
        key = self._key(repo)
        return self._read(key, info, offset, length)

    def _read(self, key: str, info: FileInfo, offset: int, length: int | None) -> Iterator[bytes]:
        if length == 0 or offset >= info.size:
            return
        self._ready()
        call = self.pfs.get_file(file=self._file(key, info.committed, info.path), offset=offset)
        remaining = length
        try:
            for message in call:
                chunk = message.value
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                if chunk:
                    yield chunk
                if remaining is not None and remaining <= 0:
                    break
        except grpc.RpcError as exc:
            raise self._error(exc, "GetFile") from None
        finally:
            close = getattr(call, "close", None)
            if close is not None:
                close()

    def diff(self, repo: str, old_ref: str | None, new_ref: str, path: str = "/") -> list[FileChange]:
        path = normalize_path(path)
        key, new = self._finished(repo, new_ref)
        old = None
        if old_ref is not None:
            _, old = self._finished(key, old_ref)
        if new is None or old is None:
            changes = []
            if new is not None:
                changes = [FileChange(i.path, "added", None, i) for i in self._files(key, new.commit.id, path)]
            elif old is not None:
                changes = [FileChange(i.path, "deleted", i, None) for i in self._files(key, old.commit.id, path)]
            return sorted(changes, key=lambda c: c.path)
        if old.commit.id == new.commit.id:
            return []
        changes = []
        for d in self._stream("DiffFile", self.pfs.diff_file, new_file=self._file(key, new.commit.id, path),
                              old_file=self._file(key, old.commit.id, path)):
            before = self._file_info(d.old_file, old.commit.id) if _set(d.old_file) and d.old_file.file.path else None
            after = self._file_info(d.new_file, new.commit.id) if _set(d.new_file) and d.new_file.file.path else None
            before = before if before is not None and not before.is_dir else None
            after = after if after is not None and not after.is_dir else None
            if before is None and after is None:
                continue
            if before is not None and after is not None and before.hash == after.hash and before.size == after.size:
                continue
            kind = "added" if before is None else "deleted" if after is None else "modified"
            changes.append(FileChange(path=(after or before).path, change=kind, old=before, new=after))
        return sorted(changes, key=lambda c: c.path)

    def _files(self, key: str, commit_id: str, path: str) -> list[FileInfo]:
        try:
            start = self.inspect_file(key, commit_id, path)
        except NotFound:
            return []
        if not start.is_dir:
            return [start]
        return [i for i in self.walk(key, commit_id, path) if not i.is_dir]


__all__ = ["PachydermBackend", "STAGING_PREFIX", "META_REPO"]
