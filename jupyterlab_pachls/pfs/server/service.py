"""Pachyderm's ``pfs_v2.API`` (the subset a PFS client needs) served over any ``Backend``.

Requests are parsed and replies serialized with ``pachyderm_sdk``'s own
message classes (betterproto), registered as generic gRPC method handlers, so
``pachyderm_sdk.Client`` (and ``pachctl``) talk to it as to pachd.

Where the served ``Backend`` and pachd differ, the server behaves like pachd
as far as a client can tell:

- An empty project name means the ``default`` project; repo type ``""`` means ``user``.
- ``StartCommit`` on a branch makes the open commit the branch's head *for
  clients of this server*: ``InspectBranch``, ``InspectCommit(branch)``,
  ``ListCommit(to=branch)`` and ``ModifyFile``/``FinishCommit`` by branch see it,
  and a second ``StartCommit`` on that branch fails with pachd's error
  ("parent commit ... has not been finished") until it is finished or dropped.
  The backend itself keeps its own rule (the branch moves when the commit
  finishes). This view is held in memory: after a restart, commits left open
  stay open in the store but no longer shadow their branch.
- ``StartCommit`` with an explicit ``parent`` points the branch at that parent
  first (recorded as a branch move in the store), as pachd moves the branch to
  the new commit whose parent it is.
- ``ModifyFile``: ``delete_file`` of ``/dir/`` (trailing slash) deletes the
  directory and everything below it, of ``/dir`` only a file of that name
  (so the SDK's delete-then-add overwrite never wipes a directory); the
  deletion is resolved when the commit lands, as the store does.
  ``add_file`` appends, as in pachd (the SDK sends
  ``delete_file`` first to overwrite). Appending to a file that existed before
  the commit reads its content from the commit's parent. Bytes of a file being
  written are spooled to a temporary file, never held whole in memory.
- Errors carry pachd's status codes: NOT_FOUND, ALREADY_EXISTS,
  INVALID_ARGUMENT, FAILED_PRECONDITION (a commit in the wrong state),
  UNIMPLEMENTED for what the served store cannot express (URL sources, commit
  triggers and branch provenance, changing a description at finish, dropping
  a finished commit).
- Branches created without a head have no head (pachd would create an empty
  ``AUTO`` commit for them).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator

import betterproto
import grpc
from betterproto.lib.google.protobuf import BytesValue, Empty
from pachyderm_sdk.api import pfs
from pachyderm_sdk.api import version as versionpb

from ..address import DEFAULT_PROJECT, is_commit_id, normalize_path, parse_ref
from ..backend import Backend
from ..errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PfsError
from ..model import Commit, FileInfo
from .errors import abort

#: Bytes per GetFile message (pachd streams files in chunks well under the SDK's 20 MB limit).
GET_CHUNK = 1 << 20
#: Metadata key under which the server reports a commit's file count (pachd has no field for it).
N_FILES_KEY = "pachls.io/n-files"
#: Files written through ModifyFile stay in memory up to this size, then spill to disk.
SPOOL_IN_MEMORY = 1 << 20
VERSION = versionpb.Version(major=2, minor=12, micro=2, additional="-pachls")


class _Unimplemented(Exception):
    pass


class _Reader:
    """A file-like view of an iterator of byte chunks (what ``put_files`` reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _key(project: str, name: str) -> str:
    return name if project == DEFAULT_PROJECT else f"{project}/{name}"


def _split(key: str) -> tuple[str, str]:
    project, _, name = key.rpartition("/")
    return (project or DEFAULT_PROJECT), name


def _repo_msg(key: str) -> pfs.Repo:
    project, name = _split(key)
    return pfs.Repo(name=name, type="user", project=pfs.Project(name=project))


def _branch_msg(key: str, name: str) -> pfs.Branch:
    return pfs.Branch(repo=_repo_msg(key), name=name)


def _commit_msg(key: str, commit_id: str, branch: str | None = None) -> pfs.Commit:
    msg = pfs.Commit(repo=_repo_msg(key), id=commit_id)
    if branch:
        msg.branch = _branch_msg(key, branch)
    return msg


class PfsService:
    """The handlers of ``pfs_v2.API`` (and ``versionpb_v2.API``) over ``backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], str] = {}  # (repo key, branch) -> open commit started here
        self._projects: set[str] = {DEFAULT_PROJECT}
        self._touched: dict[str, set[str]] = {}  # open commit id -> paths written through ModifyFile

    # -- plumbing ------------------------------------------------------------------------
    def _call(self, fn, context, *args):
        try:
            return fn(context, *args)
        except PfsError as exc:
            abort(context, exc)
        except _Unimplemented as exc:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, str(exc))

    def _stream(self, fn, context, *args):
        try:
            yield from fn(context, *args)
        except PfsError as exc:
            abort(context, exc)
        except _Unimplemented as exc:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, str(exc))

    def generic_handlers(self) -> list[grpc.GenericRpcHandler]:
        def parse(cls):
            return lambda data: cls().parse(data)

        def unary(fn, req):
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: self._call(fn, context, request),
                request_deserializer=parse(req), response_serializer=bytes)

        def stream(fn, req):
            return grpc.unary_stream_rpc_method_handler(
                lambda request, context: self._stream(fn, context, request),
                request_deserializer=parse(req), response_serializer=bytes)

        def client_stream(fn, req):
            return grpc.stream_unary_rpc_method_handler(
                lambda requests, context: self._call(fn, context, requests),
                request_deserializer=parse(req), response_serializer=bytes)

        pfs_methods = {
            "CreateRepo": unary(self.create_repo, pfs.CreateRepoRequest),
            "InspectRepo": unary(self.inspect_repo, pfs.InspectRepoRequest),
            "ListRepo": stream(self.list_repo, pfs.ListRepoRequest),
            "DeleteRepo": unary(self.delete_repo, pfs.DeleteRepoRequest),
            "CreateProject": unary(self.create_project, pfs.CreateProjectRequest),
            "InspectProject": unary(self.inspect_project, pfs.InspectProjectRequest),
            "ListProject": stream(self.list_project, pfs.ListProjectRequest),
            "DeleteProject": unary(self.delete_project, pfs.DeleteProjectRequest),
            "CreateBranch": unary(self.create_branch, pfs.CreateBranchRequest),
            "InspectBranch": unary(self.inspect_branch, pfs.InspectBranchRequest),
            "ListBranch": stream(self.list_branch, pfs.ListBranchRequest),
            "DeleteBranch": unary(self.delete_branch, pfs.DeleteBranchRequest),
            "StartCommit": unary(self.start_commit, pfs.StartCommitRequest),
            "FinishCommit": unary(self.finish_commit, pfs.FinishCommitRequest),
            "InspectCommit": unary(self.inspect_commit, pfs.InspectCommitRequest),
            "ListCommit": stream(self.list_commit, pfs.ListCommitRequest),
            "DropCommitSet": unary(self.drop_commit_set, pfs.DropCommitSetRequest),
            "DropCommit": unary(self.drop_commit, pfs.DropCommitRequest),
            "ModifyFile": client_stream(self.modify_file, pfs.ModifyFileRequest),
            "GetFile": stream(self.get_file, pfs.GetFileRequest),
            "InspectFile": unary(self.inspect_file, pfs.InspectFileRequest),
            "ListFile": stream(self.list_file, pfs.ListFileRequest),
            "WalkFile": stream(self.walk_file, pfs.WalkFileRequest),
            "GlobFile": stream(self.glob_file, pfs.GlobFileRequest),
            "DiffFile": stream(self.diff_file, pfs.DiffFileRequest),
        }
        version_methods = {"GetVersion": unary(lambda context, request: VERSION, Empty)}
        return [
            grpc.method_handlers_generic_handler("pfs_v2.API", pfs_methods),
            grpc.method_handlers_generic_handler("versionpb_v2.API", version_methods),
        ]

    # -- request parsing -------------------------------------------------------------------
    def _repo_key(self, repo: pfs.Repo | None) -> str:
        if repo is None or not repo.name:
            raise InvalidArgument("a repo is required")
        if repo.type not in ("", "user"):
            raise _Unimplemented(f"repos of type {repo.type!r} are not served here; only user repos")
        project = (repo.project.name if repo.project else "") or DEFAULT_PROJECT
        return _key(project, repo.name)

    def _commit_repo(self, commit: pfs.Commit) -> str:
        if commit.repo and commit.repo.name:
            return self._repo_key(commit.repo)
        if commit.branch and commit.branch.repo and commit.branch.repo.name:
            return self._repo_key(commit.branch.repo)
        raise InvalidArgument("cannot resolve commit with no repo")

    def _branch_ref(self, key: str, branch: str) -> str:
        with self._lock:
            open_id = self._open.get((key, branch))
        return open_id or branch

    def _ref(self, commit: pfs.Commit | None) -> tuple[str, str]:
        """(repo key, backend ref) of a Commit message: an id, a branch, or either with ancestry."""
        if commit is None:
            raise InvalidArgument("a commit is required")
        key = self._commit_repo(commit)
        text = commit.id
        branch = commit.branch.name if commit.branch else ""
        if not text and not branch:
            raise InvalidArgument("cannot resolve commit with no ID or branch")
        if text:
            name, ancestors = parse_ref(text)
            if not is_commit_id(name):
                if branch:
                    raise InvalidArgument(f"invalid commit ID given with a branch ({branch}): {text}")
                name = self._branch_ref(key, name)
            return key, name + (f"^{ancestors}" if ancestors else "")
        return key, self._branch_ref(key, branch)

    def _commit_info(self, c: Commit) -> pfs.CommitInfo:
        info = pfs.CommitInfo(
            commit=_commit_msg(c.repo, c.id, c.branch),
            origin=pfs.CommitOrigin(kind=pfs.OriginKind.AUTO if c.origin == "AUTO" else pfs.OriginKind.USER),
            description=c.message,
            size_bytes_upper_bound=c.size_bytes,
            created_by=c.author,
            metadata={**c.metadata, N_FILES_KEY: str(c.n_files)},
            direct_provenance=[_commit_msg(p.repo, p.commit, p.branch) for p in c.provenance],
        )
        if c.parent:
            info.parent_commit = _commit_msg(c.repo, c.parent)
        if c.started:
            info.started = c.started
            info.created_at = c.started
        if c.finished:
            info.finishing = c.finished
            info.finished = c.finished
            info.details = pfs.CommitInfoDetails(size_bytes=c.size_bytes)
        return info

    def _file_info(self, key: str, info: FileInfo) -> pfs.FileInfo:
        return pfs.FileInfo(
            file=pfs.File(commit=_commit_msg(key, info.committed or ""), path=info.path),
            file_type=pfs.FileType.DIR if info.is_dir else pfs.FileType.FILE,
            size_bytes=info.size,
            hash=bytes.fromhex(info.hash) if info.hash else b"",
        )

    def _project_exists(self, project: str) -> bool:
        if project in self._projects:
            return True
        return any(r.project == project for r in self.backend.list_repos())

    # -- projects --------------------------------------------------------------------------------
    def create_project(self, context, request: pfs.CreateProjectRequest):
        name = request.project.name if request.project else ""
        from ..address import validate_name

        validate_name(name, "project")
        if self._project_exists(name):
            if request.update:
                return Empty()
            raise AlreadyExists(f"project {name} already exists", project=name)
        with self._lock:
            self._projects.add(name)
        return Empty()

    def _project_info(self, name: str) -> pfs.ProjectInfo:
        return pfs.ProjectInfo(project=pfs.Project(name=name))

    def inspect_project(self, context, request: pfs.InspectProjectRequest):
        name = (request.project.name if request.project else "") or DEFAULT_PROJECT
        if not self._project_exists(name):
            raise NotFound(f"project {name} not found", project=name)
        return self._project_info(name)

    def list_project(self, context, request):
        names = set(self._projects) | {r.project for r in self.backend.list_repos()}
        for name in sorted(names):
            yield self._project_info(name)

    def delete_project(self, context, request: pfs.DeleteProjectRequest):
        name = (request.project.name if request.project else "") or DEFAULT_PROJECT
        if not self._project_exists(name):
            raise NotFound(f"project {name} not found", project=name)
        if any(r.project == name for r in self.backend.list_repos()):
            raise Conflict(f"project {name} still has repos", project=name)
        with self._lock:
            self._projects.discard(name)
        return Empty()

    # -- repos -----------------------------------------------------------------------------------
    def _repo_info(self, repo) -> pfs.RepoInfo:
        info = pfs.RepoInfo(
            repo=_repo_msg(repo.key), description=repo.description,
            branches=[_branch_msg(repo.key, b) for b in repo.branches],
            size_bytes_upper_bound=repo.size_bytes, details=pfs.RepoInfoDetails(size_bytes=repo.size_bytes),
        )
        if repo.created:
            info.created = repo.created
        return info

    def create_repo(self, context, request: pfs.CreateRepoRequest):
        key = self._repo_key(request.repo)
        project, _ = _split(key)
        if not self._project_exists(project):
            raise NotFound(f"project {project} not found", project=project)
        try:
            self.backend.create_repo(key, description=request.description)
        except AlreadyExists:
            if not request.update:
                raise
            if self.backend.inspect_repo(key).description != request.description:
                raise _Unimplemented("changing a repo's description is not supported by this server")
        return Empty()

    def inspect_repo(self, context, request: pfs.InspectRepoRequest):
        return self._repo_info(self.backend.inspect_repo(self._repo_key(request.repo)))

    def list_repo(self, context, request: pfs.ListRepoRequest):
        if request.type not in ("", "user"):
            return
        projects = {p.name or DEFAULT_PROJECT for p in request.projects}
        repos = [r for r in self.backend.list_repos() if not projects or r.project in projects]
        if request.page and request.page.page_size > 0:
            start = request.page.page_index * request.page.page_size
            repos = repos[start:start + request.page.page_size]
        for repo in repos:
            yield self._repo_info(repo)

    def delete_repo(self, context, request: pfs.DeleteRepoRequest):
        key = self._repo_key(request.repo)
        self.backend.delete_repo(key)
        with self._lock:
            for k in [k for k in self._open if k[0] == key]:
                self._open.pop(k, None)
        return pfs.DeleteRepoResponse(deleted=True)

    # -- branches --------------------------------------------------------------------------------
    def _branch_info(self, key: str, name: str, head: Commit | None) -> pfs.BranchInfo:
        info = pfs.BranchInfo(branch=_branch_msg(key, name))
        with self._lock:
            open_id = self._open.get((key, name))
        if open_id:
            info.head = _commit_msg(key, open_id, name)
        elif head is not None:
            info.head = _commit_msg(key, head.id, name)
        return info

    def _branch_name(self, branch: pfs.Branch | None) -> tuple[str, str]:
        if branch is None or not branch.name:
            raise InvalidArgument("branch must be specified")
        return self._repo_key(branch.repo), branch.name

    def create_branch(self, context, request: pfs.CreateBranchRequest):
        key, name = self._branch_name(request.branch)
        if request.provenance or (request.trigger and request.trigger.branch) or request.branch_propagation_specs:
            raise _Unimplemented("branch provenance and triggers are not supported by this server")
        head = None
        if request.head and (request.head.id or (request.head.branch and request.head.branch.name)):
            head_key, ref = self._ref(request.head)
            head = self.backend.inspect_commit(head_key, ref).id
        try:
            existing = self.backend.inspect_branch(key, name)
        except NotFound:
            existing = None
        if existing is None:
            self.backend.create_branch(key, name, head=head)
        elif head is not None and (existing.head is None or existing.head.id != head):
            self.backend.move_branch(key, name, head, reason="CreateBranch")
        return Empty()

    def inspect_branch(self, context, request: pfs.InspectBranchRequest):
        key, name = self._branch_name(request.branch)
        branch = self.backend.inspect_branch(key, name)
        return self._branch_info(key, name, branch.head)

    def list_branch(self, context, request: pfs.ListBranchRequest):
        if request.repo and request.repo.name:
            branches = self.backend.list_branches(self._repo_key(request.repo))
        else:
            branches = self.backend.list_branches()
        if request.reverse:
            branches = branches[::-1]
        for b in branches:
            yield self._branch_info(b.repo, b.name, b.head)

    def delete_branch(self, context, request: pfs.DeleteBranchRequest):
        key, name = self._branch_name(request.branch)
        self.backend.delete_branch(key, name)
        return Empty()

    # -- commits ---------------------------------------------------------------------------------
    def start_commit(self, context, request: pfs.StartCommitRequest):
        key, name = self._branch_name(request.branch)
        with self._lock:
            open_id = self._open.get((key, name))
        if open_id is not None:
            context.abort(grpc.StatusCode.UNKNOWN,
                          f"parent commit {_commit_msg(key, open_id, name)} has not been finished")
        try:
            current = self.backend.inspect_branch(key, name).head
        except NotFound:
            current = False  # no such branch
        if request.parent and (request.parent.id or (request.parent.branch and request.parent.branch.name)):
            parent_key, ref = self._ref(request.parent)
            parent = self.backend.inspect_commit(parent_key, ref)
            if parent.is_open:
                context.abort(grpc.StatusCode.UNKNOWN, f"parent commit {parent.id} has not been finished")
            if current is False:
                self.backend.create_branch(key, name, head=parent.id)
            elif current is None or current.id != parent.id:
                self.backend.move_branch(key, name, parent.id, reason="StartCommit parent")
        opened = self.backend.start_commit(key, name, message=request.description)
        with self._lock:
            self._open[(key, name)] = opened.id
            self._touched[opened.id] = set()
        return _commit_msg(key, opened.id, name)

    def _forget(self, commit_id: str) -> None:
        with self._lock:
            for k in [k for k, v in self._open.items() if v == commit_id]:
                del self._open[k]
            self._touched.pop(commit_id, None)

    def finish_commit(self, context, request: pfs.FinishCommitRequest):
        key, ref = self._ref(request.commit)
        commit = self.backend.inspect_commit(key, ref)
        if not commit.is_open:
            raise Conflict(f"commit {commit.id} has already been finished", commit=commit.id)
        if request.error:
            raise _Unimplemented("finishing a commit with an error is not supported by this server")
        if request.description and request.description != commit.message:
            raise _Unimplemented("changing a commit's description at finish is not supported by this server")
        self.backend.finish_commit(commit)
        self._forget(commit.id)
        return Empty()

    def inspect_commit(self, context, request: pfs.InspectCommitRequest):
        key, ref = self._ref(request.commit)
        commit = self.backend.inspect_commit(key, ref)
        if commit.is_open and request.wait in (pfs.CommitState.FINISHING, pfs.CommitState.FINISHED):
            while commit.is_open and context.is_active():
                time.sleep(0.05)
                commit = self.backend.inspect_commit(key, commit.id)
        return self._commit_info(commit)

    def _history(self, key: str, ref: str) -> Iterator[Commit]:
        before = None
        while True:
            page = self.backend.list_commits(key, ref, limit=200, before=before)
            yield from page
            if len(page) < 200:
                return
            before = page[-1].id

    def list_commit(self, context, request: pfs.ListCommitRequest):
        key = self._repo_key(request.repo) if request.repo and request.repo.name else None
        to = request.to if request.to and (request.to.id or (request.to.branch and request.to.branch.name)) else None
        stop = None
        if request.from_ and request.from_.id:
            stop = self.backend.inspect_commit(*self._ref(request.from_)).id
        if to is not None:
            key, ref = self._ref(to)
            commits: Iterator[Commit] = self._history(key, ref)
        else:
            if key is None:
                raise InvalidArgument("a repo is required")
            seen: dict[str, Commit] = {}
            with self._lock:
                open_ids = [v for (k, _b), v in self._open.items() if k == key]
            for cid in open_ids:
                try:
                    seen[cid] = self.backend.inspect_commit(key, cid)
                except NotFound:
                    pass
            for branch in self.backend.list_branches(key):
                if branch.head is not None:
                    for c in self._history(key, branch.head.id):
                        if c.id in seen:
                            break
                        seen[c.id] = c
            commits = iter(sorted(seen.values(), key=lambda c: c.started, reverse=True))
        selected = []
        for c in commits:
            if c.id == stop:
                break
            selected.append(c)
            if request.number and len(selected) >= request.number and not request.reverse:
                break
        if request.reverse:
            selected = selected[::-1][: request.number or None]
        for c in selected:
            yield self._commit_info(c)

    def _drop(self, key: str, commit_id: str) -> None:
        commit = self.backend.inspect_commit(key, commit_id)
        if not commit.is_open:
            raise _Unimplemented("dropping a finished commit is not supported by this server")
        self.backend.abort_commit(commit)
        self._forget(commit.id)

    def drop_commit(self, context, request: pfs.DropCommitRequest):
        key, ref = self._ref(request.commit)
        self._drop(key, self.backend.inspect_commit(key, ref).id)
        return pfs.DropCommitResponse()

    def drop_commit_set(self, context, request: pfs.DropCommitSetRequest):
        commit_id = request.commit_set.id if request.commit_set else ""
        if not is_commit_id(commit_id):
            raise InvalidArgument(f"invalid commit set id {commit_id!r}")
        for repo in self.backend.list_repos():
            try:
                self.backend.inspect_commit(repo.key, commit_id)
            except NotFound:
                continue
            self._drop(repo.key, commit_id)
            return Empty()
        raise NotFound(f"commit set {commit_id} not found", commit=commit_id)

    # -- writing files ---------------------------------------------------------------------------
    def modify_file(self, context, requests):
        commit: Commit | None = None
        key = ""
        current: tuple[str, object] | None = None  # (path, spool) of the file being written
        written_here: set[str] = set()
        deleted_here: set[str] = set()

        def flush():
            nonlocal current
            if current is None:
                return
            path, spool = current
            current = None
            try:
                spool.seek(0)
                self.backend.put_files(commit, [(path, spool)])
            finally:
                spool.close()
            written_here.add(path)
            with self._lock:
                self._touched.setdefault(commit.id, set()).add(path)

        def need_commit():
            if commit is None:
                raise InvalidArgument("ModifyFile: set_commit must come first")
            if not self.backend.inspect_commit(key, commit.id).is_open:
                raise Conflict(f"commit {commit.id} has already been finished", commit=commit.id)

        try:
            for request in requests:
                kind, body = betterproto.which_one_of(request, "body")
                if kind == "set_commit":
                    flush()
                    key, ref = self._ref(body)
                    commit = self.backend.inspect_commit(key, ref)
                    need_commit()
                elif kind == "add_file":
                    if current is None:
                        need_commit()
                    source, raw = betterproto.which_one_of(body, "source")
                    if source == "url":
                        raise _Unimplemented("adding files from a URL is not supported by this server")
                    path = normalize_path(body.path, allow_root=False)
                    if current is None or current[0] != path:
                        flush()
                        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
                        current = (path, spool)
                        if path not in deleted_here:
                            self._append_base(key, commit, path, written_here, spool)
                    if raw:
                        current[1].write(raw)
                elif kind == "delete_file":
                    flush()
                    need_commit()
                    path = normalize_path(body.path)
                    if body.path.endswith("/") or path == "/" or not self._is_dir_before(key, commit, path):
                        self.backend.delete_file(commit, path)
                    deleted_here.add(path)
                    written_here.discard(path)
                elif kind == "copy_file":
                    flush()
                    need_commit()
                    if body.append:
                        raise _Unimplemented("copy_file with append is not supported by this server")
                    self._copy(commit, normalize_path(body.dst), body.src)
                else:
                    raise InvalidArgument("ModifyFile: empty request")
            if commit is None:
                raise InvalidArgument("ModifyFile: no commit was set")
            flush()
        finally:
            if current is not None:
                current[1].close()
        return Empty()

    def _is_dir_before(self, key: str, commit: Commit, path: str) -> bool:
        """Whether ``path`` is a directory in the commit's parent (``/dir`` names a file, ``/dir/`` the tree)."""
        if commit.parent is None:
            return False
        try:
            return self.backend.inspect_file(key, commit.parent, path).is_dir
        except NotFound:
            return False

    def _append_base(self, key: str, commit: Commit, path: str, written_here: set[str], spool) -> None:
        """pachd's add_file appends: start from the file's content before this commit, if any."""
        with self._lock:
            touched = path in self._touched.get(commit.id, set())
        if touched or path in written_here:
            raise _Unimplemented(
                f"appending to {path}, already written in this open commit, is not supported by this server; "
                "delete it first to overwrite")
        if commit.parent is None:
            return
        try:
            info = self.backend.inspect_file(key, commit.parent, path)
        except NotFound:
            return
        if not info.is_dir:
            for chunk in self.backend.read_file(key, commit.parent, path):
                spool.write(chunk)

    def _copy(self, commit: Commit, dst: str, src: pfs.File) -> None:
        src_key, ref = self._ref(src.commit)
        src_path = normalize_path(src.path or "/")
        info = self.backend.inspect_file(src_key, ref, src_path)
        if not info.is_dir:
            self.backend.put_files(commit, [(dst, _Reader(self.backend.read_file(src_key, ref, src_path)))])
            return
        base = "/" if src_path == "/" else src_path + "/"
        for item in self.backend.walk(src_key, ref, src_path):
            if item.is_dir:
                continue
            target = (dst.rstrip("/") + "/" + item.path[len(base):])
            self.backend.put_files(commit, [(target, _Reader(self.backend.read_file(src_key, ref, item.path)))])

    # -- reading files ---------------------------------------------------------------------------
    def _file(self, file: pfs.File | None) -> tuple[str, str, str]:
        if file is None:
            raise InvalidArgument("a file is required")
        key, ref = self._ref(file.commit)
        return key, ref, normalize_path(file.path or "/")

    def get_file(self, context, request: pfs.GetFileRequest):
        if request.url:
            raise _Unimplemented("GetFile to a URL is not supported by this server")
        key, ref, path = self._file(request.file)
        info = self.backend.inspect_file(key, ref, path)
        if info.is_dir:
            raise InvalidArgument(f"{path} is a directory; use GetFileTAR or WalkFile", path=path)
        for chunk in self.backend.read_file(key, ref, path, offset=max(0, request.offset)):
            for start in range(0, len(chunk), GET_CHUNK):
                yield BytesValue(value=chunk[start:start + GET_CHUNK])

    def inspect_file(self, context, request: pfs.InspectFileRequest):
        key, ref, path = self._file(request.file)
        return self._file_info(key, self.backend.inspect_file(key, ref, path))

    def _dir_entries(self, key: str, ref: str, path: str, after: str | None) -> Iterator[FileInfo]:
        while True:
            page = self.backend.list_dir(key, ref, path, limit=1000, after=after)
            yield from page.items
            if page.next is None:
                return
            after = page.next

    def list_file(self, context, request: pfs.ListFileRequest):
        key, ref, path = self._file(request.file)
        info = self.backend.inspect_file(key, ref, path)
        if not info.is_dir:
            yield self._file_info(key, info)
            return
        marker = request.pagination_marker.path if request.pagination_marker and request.pagination_marker.path else None
        if request.reverse:
            items = [i for i in self._dir_entries(key, ref, path, None) if marker is None or i.path < marker][::-1]
        else:
            items = self._dir_entries(key, ref, path, marker)
        for n, item in enumerate(items):
            if request.number and n >= request.number:
                return
            yield self._file_info(key, item)

    def _walk(self, key: str, ref: str, info: FileInfo) -> Iterator[FileInfo]:
        yield info
        if info.is_dir:
            for child in self._dir_entries(key, ref, info.path, None):
                yield from self._walk(key, ref, child)

    def walk_file(self, context, request: pfs.WalkFileRequest):
        key, ref, path = self._file(request.file)
        marker = request.pagination_marker.path if request.pagination_marker and request.pagination_marker.path else None
        items = self._walk(key, ref, self.backend.inspect_file(key, ref, path))
        if request.reverse:
            items = iter([i for i in items if marker is None or i.path < marker][::-1])
        elif marker is not None:
            items = (i for i in items if i.path > marker)
        for n, item in enumerate(items):
            if request.number and n >= request.number:
                return
            yield self._file_info(key, item)

    def glob_file(self, context, request: pfs.GlobFileRequest):
        key, ref = self._ref(request.commit)
        for info in sorted(self.backend.glob(key, ref, request.pattern), key=lambda i: i.path):
            yield self._file_info(key, info)

    def diff_file(self, context, request: pfs.DiffFileRequest):
        key, new_ref, path = self._file(request.new_file)
        new = self.backend.inspect_commit(key, new_ref)
        if request.old_file and request.old_file.commit and (
            request.old_file.commit.id or (request.old_file.commit.branch and request.old_file.commit.branch.name)
        ):
            old_key, old_ref, _old_path = self._file(request.old_file)
            if old_key != key:
                raise _Unimplemented("diffing commits of two repos is not supported by this server")
            old = self.backend.inspect_commit(key, old_ref).id
        else:
            old = new.parent
        for change in self.backend.diff(key, old, new.id, path):
            reply = pfs.DiffFileResponse()
            if change.new is not None:
                reply.new_file = self._file_info(key, change.new)
            if change.old is not None:
                reply.old_file = self._file_info(key, change.old)
            yield reply


__all__ = ["PfsService", "GET_CHUNK", "N_FILES_KEY", "VERSION"]
