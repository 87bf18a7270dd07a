"""Pachyderm's ``pfs_v2.API`` served over the embedded store (``LocalBackend``).

Requests are parsed and replies serialized with ``pachyderm_sdk``'s own message classes
(betterproto), registered as generic gRPC method handlers, so ``pachyderm_sdk.Client`` (and
``pachctl``) talk to it as to pachd 2.12. ``docs/pachyderm-compat.md`` lists every method and
each known difference; the main points:

- Every call goes through ``calls``: pachd's request validation, ``Commit.branch`` cleared in
  responses (NilBranch), a debug log line per call, pachd's status codes.
- An empty project name means ``default``; repo type ``""`` means ``user``.
- ``StartCommit`` makes the open commit the branch's head *for clients of this server* (pachd
  moves the branch at once; the store moves it when the commit lands). The server rebuilds this
  view from the store's open commits when it starts, so an open commit stays its branch's head
  across restarts, as in pachd.
- ``CreateBranch`` without a head lands an empty commit of origin AUTO, as pachd does, so the
  first user commit's parent is that commit.
- Hashes are opaque (``hashing``); ``FileInfo.committed`` is the commit's finishing time.
- An open commit reads as what it holds so far (``views.OpenView``), as in pachd.
- ``ModifyFile``'s ``add_file`` appends, as in pachd (the SDK sends ``delete_file`` first to
  overwrite); a second append to a path in the same open commit appends to what was staged.
- What needs pipelines, enterprise, storage file sets, URLs or egress answers UNIMPLEMENTED with
  the reason (auth: as pachd with auth off, see ``identity``).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone

import betterproto
import grpc
from betterproto.lib.google.protobuf import BytesValue, Empty
from cachetools import LRUCache
from pachyderm_sdk.api import pfs

from ..address import DEFAULT_PROJECT, is_commit_id, normalize_path, parent_dir, parse_ref, validate_name
from ..archive import tar_stream
from ..errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from ..model import Commit, FileInfo
from ..wire import branch_msg, commit_msg, key_of, repo_msg, repo_text, split_key
from . import calls
from .calls import Status, Unimplemented
from .hashing import Hasher
from .transactions import transaction_of
from .views import OpenView, StoreView

#: Bytes per GetFile message (pachd streams files in chunks well under the SDK's 20 MB limit).
GET_CHUNK = 1 << 20
#: Files written through ModifyFile stay in memory up to this size, then spill to disk.
SPOOL_IN_MEMORY = 1 << 20
#: Characters that make GetFile's path a glob.
GLOB_MAGIC = set("*?[")
#: Seconds without an answer before fetching a URL for ModifyFile gives up.
URL_TIMEOUT = 60
#: How long a waiting call sleeps between checks that its client is still there.
WAIT_SLICE = 1.0

#: Encoded ListRepo and ListBranch replies kept by what they hold: a panel polling a cluster of
#: thousands of branches gets the same replies poll after poll, and betterproto encodes slowly.
ENCODED_REPLIES = 50_000
#: pachd's answer to ListBranch without a repo while auth is on.
ALL_BRANCHES_WITH_AUTH = "Cannot list branches from all repos with auth activated"
SQUASH_WITHOUT_CHILDREN = ("cannot squash a commit that has no children as that would cause data loss, "
                           "use the drop operation instead")

#: pfs_v2 methods that join a transaction when called with its header, and their request field.
TRANSACTIONAL = {"CreateRepo": "create_repo", "DeleteRepo": "delete_repo", "StartCommit": "start_commit",
                 "FinishCommit": "finish_commit", "SquashCommitSet": "squash_commit_set",
                 "CreateBranch": "create_branch", "DeleteBranch": "delete_branch"}

#: pfs_v2 methods that cannot apply to the embedded store, and why.
NOT_SERVED = {
    "ActivateAuth": "the auth service is not activated",
    "CreateFileSet": "storage file sets are not served: the embedded store keeps no file sets",
    "GetFileSet": "storage file sets are not served: the embedded store keeps no file sets",
    "AddFileSet": "storage file sets are not served: the embedded store keeps no file sets",
    "RenewFileSet": "storage file sets are not served: the embedded store keeps no file sets",
    "ComposeFileSet": "storage file sets are not served: the embedded store keeps no file sets",
    "ShardFileSet": "storage file sets are not served: the embedded store keeps no file sets",
    "CheckStorage": "storage checks are not served: the embedded store has no chunk storage (use Fsck)",
    "PutCache": "the file set cache is not served: the embedded store keeps no file sets",
    "GetCache": "the file set cache is not served: the embedded store keeps no file sets",
    "ClearCache": "the file set cache is not served: the embedded store keeps no file sets",
    "ListTask": "there are no tasks: the embedded store runs no workers",
    "Egress": "egress to object storage or SQL is not served by the embedded store",
    "ForgetCommit": "forgetting a commit's file sets is not served: the embedded store keeps no file sets",
}


def _unknown(message: str) -> Status:
    """pachd answers plain errors (``errors.Errorf``) with UNKNOWN."""
    return Status(grpc.StatusCode.UNKNOWN, message)


def _frozen(record: dict) -> str:
    """An annotation as part of a cache key."""
    return json.dumps(record, sort_keys=True)


def _ts(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, timezone.utc)


def _refuse_path_range(request: pfs.GetFileRequest, method: str) -> None:
    """pachd reads only the entries inside a request's path_range; serve reads whole trees, so a range is
    refused rather than answered with everything as if it were the range."""
    if calls.has(request, "path_range") and (request.path_range.lower or request.path_range.upper):
        raise Unimplemented(f"{method} with a path_range is not served: ask for a path or a glob instead")


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


def _fetch(url: str, out) -> None:
    """Copy what an http(s) URL serves into ``out``, as pachd's putFileURL does."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise Unimplemented(f"adding files from {scheme or 'this kind of'} URLs is not served: the embedded store "
                            "fetches http(s) URLs only, not object storage")
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=URL_TIMEOUT) as response:
            while chunk := response.read(GET_CHUNK):
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise _unknown(f"error retrieving content from {url!r}: {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _unknown(f"Get {url!r}: {reason}") from None


class PfsService:
    """The handlers of ``pfs_v2.API`` over ``backend`` (a ``LocalBackend``)."""

    def __init__(self, backend, *, auth_on: bool = False) -> None:
        self.backend = backend
        self.auth_on = auth_on
        self.hasher = Hasher(backend)
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], str] = {}  # (repo key, branch) -> open commit started here
        self._encoded: LRUCache[tuple, bytes] = LRUCache(ENCODED_REPLIES)  # see ``_listed``
        self.transactions = None  # the TransactionService that pfs calls inside a transaction go to
        # Commits left open in the store (by an earlier run of the server) are their branch's head
        # again, as pachd's open commits stay heads across restarts.
        for repo in backend.list_repos():
            for commit in backend.open_commits(repo.key):  # oldest first: the newest wins
                if commit.branch:
                    self._open[(repo.key, commit.branch)] = commit.id

    # -- registration --------------------------------------------------------------------------
    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """``{"Method": handler}`` for every method of ``pfs_v2.API`` in the SDK's stubs."""
        r = pfs
        served = {
            "CreateRepo": (calls.unary, self.create_repo, r.CreateRepoRequest),
            "InspectRepo": (calls.unary, self.inspect_repo, r.InspectRepoRequest),
            "ListRepo": (calls.server_stream, self.list_repo, r.ListRepoRequest),
            "DeleteRepo": (calls.unary, self.delete_repo, r.DeleteRepoRequest),
            "DeleteRepos": (calls.unary, self.delete_repos, r.DeleteReposRequest),
            "ReposSummary": (calls.unary, self.repos_summary, r.ReposSummaryRequest),
            "CreateProject": (calls.unary, self.create_project, r.CreateProjectRequest),
            "InspectProject": (calls.unary, self.inspect_project, r.InspectProjectRequest),
            "InspectProjectV2": (calls.unary, self.inspect_project_v2, r.InspectProjectV2Request),
            "ListProject": (calls.server_stream, self.list_project, r.ListProjectRequest),
            "DeleteProject": (calls.unary, self.delete_project, r.DeleteProjectRequest),
            "CreateBranch": (calls.unary, self.create_branch, r.CreateBranchRequest),
            "InspectBranch": (calls.unary, self.inspect_branch, r.InspectBranchRequest),
            "ListBranch": (calls.server_stream, self.list_branch, r.ListBranchRequest),
            "DeleteBranch": (calls.unary, self.delete_branch, r.DeleteBranchRequest),
            "WalkBranchProvenance": (calls.server_stream, self.walk_branches, r.WalkBranchProvenanceRequest),
            "WalkBranchSubvenance": (calls.server_stream, self.walk_branches, r.WalkBranchSubvenanceRequest),
            "StartCommit": (calls.unary, self.start_commit, r.StartCommitRequest),
            "FinishCommit": (calls.unary, self.finish_commit, r.FinishCommitRequest),
            "ClearCommit": (calls.unary, self.clear_commit, r.ClearCommitRequest),
            "InspectCommit": (calls.unary, self.inspect_commit, r.InspectCommitRequest),
            "ListCommit": (calls.server_stream, self.list_commit, r.ListCommitRequest),
            "SubscribeCommit": (calls.server_stream, self.subscribe_commit, r.SubscribeCommitRequest),
            "SquashCommit": (calls.unary, self.squash_commit, r.SquashCommitRequest),
            "DropCommit": (calls.unary, self.drop_commit, r.DropCommitRequest),
            "InspectCommitSet": (calls.server_stream, self.inspect_commit_set, r.InspectCommitSetRequest),
            "ListCommitSet": (calls.server_stream, self.list_commit_set, r.ListCommitSetRequest),
            "SquashCommitSet": (calls.unary, self.squash_commit_set, r.SquashCommitSetRequest),
            "DropCommitSet": (calls.unary, self.drop_commit_set, r.DropCommitSetRequest),
            "FindCommits": (calls.server_stream, self.find_commits, r.FindCommitsRequest),
            "WalkCommitProvenance": (calls.server_stream, self.walk_commits, r.WalkCommitProvenanceRequest),
            "WalkCommitSubvenance": (calls.server_stream, self.walk_commits, r.WalkCommitSubvenanceRequest),
            "ModifyFile": (calls.client_stream, self.modify_file, r.ModifyFileRequest),
            "GetFile": (calls.server_stream, self.get_file, r.GetFileRequest),
            "GetFileTAR": (calls.server_stream, self.get_file_tar, r.GetFileRequest),
            "InspectFile": (calls.unary, self.inspect_file, r.InspectFileRequest),
            "ListFile": (calls.server_stream, self.list_file, r.ListFileRequest),
            "WalkFile": (calls.server_stream, self.walk_file, r.WalkFileRequest),
            "GlobFile": (calls.server_stream, self.glob_file, r.GlobFileRequest),
            "DiffFile": (calls.server_stream, self.diff_file, r.DiffFileRequest),
            "DeleteAll": (calls.unary, self.delete_all, Empty),
            "Fsck": (calls.server_stream, self.fsck, r.FsckRequest),
        }
        result = {}
        for path, kind in calls.stub_methods(pfs.ApiStub).items():
            name = path.rsplit("/", 1)[1]
            if name in served:
                make, fn, request_cls = served[name]
                if name in TRANSACTIONAL:
                    fn = self._in_transaction(TRANSACTIONAL[name], fn)
                result[name] = make(path, fn, request_cls)
            else:
                code = grpc.StatusCode.UNIMPLEMENTED
                result[name] = calls.refused(path, kind, code, NOT_SERVED.get(name, f"{name} is not served here"))
        return result

    def _in_transaction(self, field: str, fn):
        """Run ``fn``, or append the request to the transaction the call names in its header."""
        def call(context, request):
            txn_id = transaction_of(context)
            if txn_id and self.transactions is not None:
                return self.transactions.append(txn_id, field, request)
            return fn(context, request)
        return call

    # -- request parsing -------------------------------------------------------------------------
    def _repo_key(self, repo: pfs.Repo | None) -> str:
        if repo is None or not repo.name:
            raise InvalidArgument("a repo is required")
        if repo.type not in ("", "user"):
            raise Unimplemented(f"repos of type {repo.type!r} are not served here; only user repos "
                                "(spec and meta repos belong to pipelines)")
        project = (repo.project.name if calls.has(repo, "project") else "") or DEFAULT_PROJECT
        return key_of(project, repo.name)

    def _commit_repo(self, commit: pfs.Commit) -> str:
        if calls.has(commit, "repo") and commit.repo.name:
            return self._repo_key(commit.repo)
        if calls.has(commit, "branch") and calls.has(commit.branch, "repo") and commit.branch.repo.name:
            return self._repo_key(commit.branch.repo)
        raise _unknown("pick commit tx: cannot pick commit with no repo")

    def _branch_ref(self, key: str, branch: str) -> str:
        with self._lock:
            open_id = self._open.get((key, branch))
        return open_id or branch

    def _ref(self, commit: pfs.Commit | None) -> tuple[str, str]:
        """(repo key, backend ref) of a Commit message: an id, a branch, or either with ancestry."""
        if commit is None:
            raise _unknown("pick commit tx: cannot pick nil commit")
        key = self._commit_repo(commit)
        text = commit.id
        branch = commit.branch.name if calls.has(commit, "branch") else ""
        if not text and not branch:
            raise _unknown("pick commit tx: cannot pick commit with no ID or branch")
        if text:
            name, ancestors = parse_ref(text)
            if not is_commit_id(name):
                if branch:
                    raise InvalidArgument(f"invalid commit ID given with a branch ({branch}): {text}")
                name = self._branch_ref(key, name)
            return key, name + (f"^{ancestors}" if ancestors else "")
        return key, self._branch_ref(key, branch)

    def _commit(self, msg: pfs.Commit | None) -> Commit:
        return self.backend.inspect_commit(*self._ref(msg))

    # -- pickers (pachd's CommitPicker, BranchPicker, RepoPicker, ProjectPicker) ---------------------
    def pick_project(self, picker: pfs.ProjectPicker) -> str:
        name = picker.name or DEFAULT_PROJECT
        if name not in self._projects():
            raise NotFound(f"pick project: project {name!r} not found", project=name)
        return name

    def pick_repo(self, picker: pfs.RepoPicker) -> str:
        kind, value = betterproto.which_one_of(picker, "picker")
        if kind != "name":
            raise _unknown("pick repo: repo picker is of an unknown type")
        project = self.pick_project(value.project) if calls.has(value, "project") else DEFAULT_PROJECT
        key = self._repo_key(pfs.Repo(name=value.name, type=value.type or "user", project=pfs.Project(name=project)))
        self.backend.inspect_repo(key)
        return key

    def pick_branch(self, picker: pfs.BranchPicker) -> tuple[str, str]:
        kind, value = betterproto.which_one_of(picker, "picker")
        if kind != "name":
            raise _unknown("pick branch: branch picker is of an unknown type")
        key = self.pick_repo(value.repo)
        self.backend.inspect_branch(key, value.name)
        return key, value.name

    def pick_commit(self, picker: pfs.CommitPicker) -> Commit:
        kind, value = betterproto.which_one_of(picker, "picker")
        if kind == "id":
            return self.backend.inspect_commit(self.pick_repo(value.repo), value.id)
        if kind == "branch_head":
            key, name = self.pick_branch(value)
            return self.backend.inspect_commit(key, self._branch_ref(key, name))
        if kind == "ancestor":
            start = self.pick_commit(value.start)
            return self.backend.inspect_commit(start.repo, f"{start.id}^{value.offset}" if value.offset else start.id)
        if kind == "branch_root":
            key, name = self.pick_branch(value.branch)
            history = self._history(key, self._branch_ref(key, name))[::-1]
            if value.offset >= len(history):
                raise NotFound(f"pick commit: branch {name} has no commit {value.offset} from its root")
            return history[value.offset]
        raise _unknown("pick commit: commit picker is of an unknown type")

    def _history(self, key: str, ref: str) -> list[Commit]:
        """The commits from ``ref`` back to the first, newest first."""
        result: list[Commit] = []
        before = None
        while True:
            page = self.backend.list_commits(key, ref, limit=200, before=before)
            result.extend(page)
            if len(page) < 200:
                return result
            before = page[-1].id

    def _set(self, msg, name: str) -> bool:
        """Whether a Commit field names a commit (set, with an id or a branch)."""
        if not calls.has(msg, name):
            return False
        value = getattr(msg, name)
        return bool(value.id or (calls.has(value, "branch") and value.branch.name))

    # -- replies ---------------------------------------------------------------------------------
    def _commit_info(self, c: Commit) -> pfs.CommitInfo:
        info = pfs.CommitInfo(
            commit=commit_msg(c.repo, c.id, c.branch),
            origin=pfs.CommitOrigin(kind=pfs.OriginKind.AUTO if c.origin == "AUTO" else pfs.OriginKind.USER),
            description=c.message,
            size_bytes_upper_bound=c.size_bytes,
            created_by=c.author,
            metadata=dict(c.metadata),
            direct_provenance=[commit_msg(p.repo, p.commit, p.branch) for p in c.provenance],
        )
        if c.parent:
            info.parent_commit = commit_msg(c.repo, c.parent)
        if c.started:
            info.started = c.started
            info.created_at = c.started
        if c.finished:
            info.finishing = c.finished
            info.finished = c.finished
            info.details = pfs.CommitInfoDetails(size_bytes=c.size_bytes)
        return info

    def _file_info(self, commit: Commit, info: FileInfo, view=None) -> pfs.FileInfo:
        view = view or self._view(commit)
        msg = pfs.FileInfo(
            file=pfs.File(commit=commit_msg(commit.repo, commit.id, commit.branch), path=info.path),
            file_type=pfs.FileType.DIR if info.is_dir else pfs.FileType.FILE,
            size_bytes=info.size,
            hash=view.hash(info),
        )
        if commit.finished:
            msg.committed = commit.finished
        return msg

    # -- projects ----------------------------------------------------------------------------------
    def _projects(self) -> dict[str, dict]:
        """Projects: the ``default`` one, those created, and any that holds repos."""
        known = self.backend.annotations("project")
        known.setdefault(DEFAULT_PROJECT, {})
        for repo in self.backend.list_repos():
            known.setdefault(repo.project, {})
        return known

    def _project_info(self, name: str, record: dict) -> pfs.ProjectInfo:
        info = pfs.ProjectInfo(project=pfs.Project(name=name), description=record.get("description", ""),
                               metadata=dict(record.get("metadata", {})))
        if record.get("created"):
            info.created_at = _ts(record["created"])
        return info

    def _project_name(self, project: pfs.Project | None) -> str:
        return (project.name if project is not None else "") or DEFAULT_PROJECT

    def create_project(self, context, request: pfs.CreateProjectRequest):
        name = request.project.name if calls.has(request, "project") else ""
        validate_name(name, "project")
        record = self.backend.annotation("project", name)
        if record is not None or name in self._projects():
            if not request.update:
                raise AlreadyExists(f"project {name} already exists", project=name)
            record = dict(record or {})
            record["description"] = request.description
        else:
            record = {"description": request.description, "created": time.time()}
        self.backend.annotate("project", name, record)
        return Empty()

    def _known_project(self, name: str) -> dict:
        record = self._projects().get(name)
        if record is None:
            raise NotFound(f"project {name} not found", project=name)
        return record

    def inspect_project(self, context, request: pfs.InspectProjectRequest):
        name = self._project_name(request.project)
        return self._project_info(name, self._known_project(name))

    def inspect_project_v2(self, context, request: pfs.InspectProjectV2Request):
        name = self._project_name(request.project)
        # pachd adds the project's pipeline defaults; without pipelines there are none
        return pfs.InspectProjectV2Response(info=self._project_info(name, self._known_project(name)),
                                            defaults_json="{}")

    def list_project(self, context, request):
        for name, record in sorted(self._projects().items()):
            yield self._project_info(name, record)

    def delete_project(self, context, request: pfs.DeleteProjectRequest):
        name = self._project_name(request.project if calls.has(request, "project") else None)
        validate_name(name, "project")
        self._known_project(name)
        repos = [r for r in self.backend.list_repos() if r.project == name]
        if repos and not request.force:
            still = "\n".join(f"repo {repo_text(r.key)} still exists" for r in repos)
            raise Status(grpc.StatusCode.FAILED_PRECONDITION, f"cannot delete project {name}: {still}")
        for repo in repos:
            self._delete_repo(repo.key)
        self.backend.annotate("project", name, None)
        return Empty()

    def _listed(self, what: tuple, make) -> bytes:
        """A listing's reply, encoded as the stream would send it (``calls.nil_branch`` applied), kept
        by ``what`` it holds; ``make()`` builds it the first time."""
        with self._lock:
            found = self._encoded.get(what)
        if found is None:
            found = bytes(calls.nil_branch(make()))
            with self._lock:
                self._encoded[what] = found
        return found

    # -- repos -----------------------------------------------------------------------------------
    def _repo_info(self, repo, record: dict | None = None) -> pfs.RepoInfo:
        """``record``: the repo's annotation when the caller read them all (None: read it here)."""
        if record is None:
            record = self.backend.annotation("repo", repo.key) or {}
        message = repo_msg(repo.key)
        info = pfs.RepoInfo(
            repo=message, description=repo.description,
            branches=[pfs.Branch(repo=message, name=b) for b in repo.branches],
            size_bytes_upper_bound=repo.size_bytes, details=pfs.RepoInfoDetails(size_bytes=repo.size_bytes),
            metadata=dict(record.get("metadata", {})),
        )
        if repo.created:
            info.created = repo.created
        return info

    def create_repo(self, context, request: pfs.CreateRepoRequest):
        key = self._repo_key(request.repo)
        project, name = split_key(key)
        validate_name(name, "repo")
        if project not in self._projects():
            raise NotFound(f"project {project} not found", project=project)
        try:
            self.backend.create_repo(key, description=request.description)
        except AlreadyExists:
            if not request.update:
                raise
            self.backend.set_repo_description(key, request.description)
        return Empty()

    def inspect_repo(self, context, request: pfs.InspectRepoRequest):
        return self._repo_info(self.backend.inspect_repo(self._repo_key(request.repo)))

    def list_repo(self, context, request: pfs.ListRepoRequest):
        if request.type not in ("", "user"):
            return
        projects = {p.name or DEFAULT_PROJECT for p in request.projects}
        repos = [r for r in self.backend.list_repos() if not projects or r.project in projects]
        if calls.has(request, "page") and request.page.page_size > 0:
            start = request.page.page_index * request.page.page_size
            repos = repos[start:start + request.page.page_size]
        records = self.backend.annotations("repo")  # one query, not one per repo
        # pachd builds the whole reply (auth checks, each repo's size) before sending its first message
        replies = [self._listed(("repo", repo, _frozen(records.get(repo.key, {}))),
                                lambda repo=repo: self._repo_info(repo, records.get(repo.key, {})))
                   for repo in repos]
        yield from replies

    def _delete_repo(self, key: str) -> None:
        self.backend.delete_repo(key)
        self.backend.annotate("repo", key, None)
        for name in [n for n in self.backend.annotations("branch") if n.startswith(key + "@")]:
            self.backend.annotate("branch", name, None)
        with self._lock:
            for k in [k for k in self._open if k[0] == key]:
                self._open.pop(k, None)

    def delete_repo(self, context, request: pfs.DeleteRepoRequest):
        if not calls.has(request, "repo"):
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, "no repo specified")
        key = self._repo_key(request.repo)
        try:
            self._delete_repo(key)
        except NotFound:  # pachd: deleting a repo that is not there succeeds, deleting nothing
            return pfs.DeleteRepoResponse(deleted=False)
        return pfs.DeleteRepoResponse(deleted=True)

    def delete_repos(self, context, request: pfs.DeleteReposRequest):
        if request.all:
            projects = None
        elif request.projects:
            projects = {p.name or DEFAULT_PROJECT for p in request.projects}
        else:
            return pfs.DeleteReposResponse()
        deleted = []
        for repo in self.backend.list_repos():
            if projects is None or repo.project in projects:
                self._delete_repo(repo.key)
                deleted.append(repo_msg(repo.key))
        return pfs.DeleteReposResponse(repos=deleted)

    def repos_summary(self, context, request: pfs.ReposSummaryRequest):
        names = []
        for picker in request.projects:
            kind, value = betterproto.which_one_of(picker, "picker")
            if kind != "name":
                raise _unknown(f"generate summary: project picker is of an unknown type: {kind or 'nil'}")
            names.append(value)
        summaries: dict[str, pfs.ReposSummary] = {}
        for repo in self.backend.list_repos():
            summary = summaries.setdefault(repo.project, pfs.ReposSummary(project=pfs.Project(name=repo.project)))
            summary.user_repo_count += 1
            summary.size_bytes += repo.size_bytes
        return pfs.ReposSummaryResponse(summaries=[summaries[n] for n in names if n in summaries])

    # -- branches --------------------------------------------------------------------------------
    def _head_id(self, key: str, name: str, head: Commit | None) -> str | None:
        """The head clients of this server see: the open commit started here, else the store's head."""
        with self._lock:
            open_id = self._open.get((key, name))
        return open_id or (head.id if head is not None else None)

    def _branch_info(self, key: str, name: str, head_id: str | None, record: dict | None = None) -> pfs.BranchInfo:
        """``head_id`` from ``_head_id``; ``record``: the branch's annotation when the caller read them
        all (None: read it here)."""
        if record is None:
            record = self.backend.annotation("branch", f"{key}@{name}") or {}
        branch = branch_msg(key, name)
        info = pfs.BranchInfo(branch=branch, metadata=dict(record.get("metadata", {})))
        if head_id:
            # the branch's own Repo message (a listing makes thousands); the head's branch is cleared in replies
            info.head = pfs.Commit(repo=branch.repo, id=head_id)
        return info

    def _branch_name(self, branch: pfs.Branch | None) -> tuple[str, str]:
        if branch is None or not branch.name:
            raise _unknown("branch must be specified")
        return self._repo_key(branch.repo if calls.has(branch, "repo") else None), branch.name

    def create_branch(self, context, request: pfs.CreateBranchRequest):
        if not calls.has(request, "branch"):
            raise _unknown("branch cannot be nil")
        if not calls.has(request.branch, "repo"):
            raise _unknown("branch repo cannot be nil")
        key, name = self._branch_name(request.branch)
        validate_name(name, "branch")
        if request.provenance or (calls.has(request, "trigger") and request.trigger.branch) \
                or request.branch_propagation_specs:
            raise Unimplemented("branch provenance and triggers are not served: they exist for pipelines, "
                                "which the embedded store does not run")
        head = self._commit(request.head).id if self._set(request, "head") else None
        self.backend.inspect_repo(key)
        try:
            existing = self.backend.inspect_branch(key, name)
        except NotFound:
            existing = None
        if head is not None:
            if existing is None:
                self.backend.create_branch(key, name, head=head)
            elif existing.head is None or existing.head.id != head:
                self.backend.move_branch(key, name, head, reason="CreateBranch")
        elif existing is None or existing.head is None:
            # pachd gives a branch created without a head an empty, finished commit of origin AUTO
            self.backend.auto_commit(key, name)
        return Empty()

    def inspect_branch(self, context, request: pfs.InspectBranchRequest):
        key, name = self._branch_name(request.branch if calls.has(request, "branch") else None)
        branch = self.backend.inspect_branch(key, name)
        return self._branch_info(key, name, self._head_id(key, name, branch.head))

    def list_branch(self, context, request: pfs.ListBranchRequest):
        if calls.has(request, "repo") and request.repo.name:
            branches = self.backend.list_branches(self._repo_key(request.repo))
        elif self.auth_on:
            raise _unknown(ALL_BRANCHES_WITH_AUTH)
        else:
            branches = self.backend.list_branches()
        if request.reverse:
            branches = branches[::-1]
        records = self.backend.annotations("branch")  # one query, not one per branch
        for b in branches:
            record = records.get(f"{b.repo}@{b.name}", {})
            head = self._head_id(b.repo, b.name, b.head)
            yield self._listed(("branch", b.repo, b.name, head, _frozen(record)),
                               lambda: self._branch_info(b.repo, b.name, head, record))

    def delete_branch(self, context, request: pfs.DeleteBranchRequest):
        key, name = self._branch_name(request.branch)
        self.backend.delete_branch(key, name)
        self.backend.annotate("branch", f"{key}@{name}", None)
        with self._lock:
            self._open.pop((key, name), None)
        return Empty()

    def walk_branches(self, context, request):
        # Without branch provenance (pipelines), each start branch is its own whole walk.
        for n, picker in enumerate(request.start):
            if request.max_branches and n >= request.max_branches:
                return
            key, name = self.pick_branch(picker)
            yield self._branch_info(key, name, self._head_id(key, name, self.backend.inspect_branch(key, name).head))

    # -- commits ---------------------------------------------------------------------------------
    def start_commit(self, context, request: pfs.StartCommitRequest, commit_id: str | None = None):
        if not calls.has(request, "branch"):
            raise _unknown("branch must be specified")
        key, name = self._branch_name(request.branch)
        self.backend.inspect_repo(key)
        validate_name(name, "branch")
        with self._lock:
            open_id = self._open.get((key, name))
        if open_id is not None:
            raise _unknown(f"create commit: parent commit {repo_text(key)}@{open_id} has not been finished")
        try:
            current = self.backend.inspect_branch(key, name).head
        except NotFound:
            current = False  # no such branch
        if self._set(request, "parent"):
            parent = self._commit(request.parent)
            if parent.is_open:
                raise _unknown(f"create commit: parent commit {repo_text(key)}@{parent.id} has not been finished")
            if current is False:
                self.backend.create_branch(key, name, head=parent.id)
            elif current is None or current.id != parent.id:
                self.backend.move_branch(key, name, parent.id, reason="StartCommit parent")
        opened = self.backend.start_commit(key, name, message=request.description, commit_id=commit_id)
        with self._lock:
            self._open[(key, name)] = opened.id
        return commit_msg(key, opened.id, name)

    def _forget(self, commit_id: str) -> None:
        with self._lock:
            for k in [k for k, v in self._open.items() if v == commit_id]:
                del self._open[k]

    def finish_commit(self, context, request: pfs.FinishCommitRequest):
        commit = self._commit(request.commit)
        if not commit.is_open:
            raise _unknown(f"commit {repo_text(commit.repo)}@{commit.id} has already finished")
        if request.error:
            raise Unimplemented("finishing a commit with an error is not served: failed commits come from "
                                "pipeline jobs, which the embedded store does not run")
        if request.description:
            self.backend.set_commit_message(commit, request.description)
        self.backend.finish_commit(commit)
        self._forget(commit.id)
        return Empty()

    def clear_commit(self, context, request: pfs.ClearCommitRequest):
        commit = self._commit(request.commit)
        if not commit.is_open:
            raise _unknown("cannot clear finished commit")
        self.backend.clear_commit(commit)
        return Empty()

    def _wait(self, context, key: str, commit: Commit, state) -> Commit:
        """pachd's waitForCommit: block until the commit is FINISHING/FINISHED (READY and STARTED
        need nothing more without provenance)."""
        if state not in (pfs.CommitState.FINISHING, pfs.CommitState.FINISHED):
            return commit
        token = self.backend.change_token()
        while commit.is_open:
            if not context.is_active():
                raise Status(grpc.StatusCode.CANCELLED, "the client went away")
            token = self.backend.wait_for_change(token, WAIT_SLICE)
            try:
                commit = self.backend.inspect_commit(key, commit.id)
            except NotFound:
                raise _unknown(f"inspect finishing or finished commit: commit {repo_text(key)}@{commit.id} "
                               "was deleted") from None
        return commit

    def inspect_commit(self, context, request: pfs.InspectCommitRequest):
        key, ref = self._ref(request.commit)
        commit = self._wait(context, key, self.backend.inspect_commit(key, ref), request.wait)
        return self._commit_info(commit)

    @staticmethod
    def _passes(commit: Commit, every: bool, origin) -> bool:
        if every or not origin:
            return True
        return (pfs.OriginKind.AUTO if commit.origin == "AUTO" else pfs.OriginKind.USER) == origin

    def list_commit(self, context, request: pfs.ListCommitRequest):
        if not calls.has(request, "repo"):
            raise _unknown("repo cannot be nil")
        key = self._repo_key(request.repo) if request.repo.name else None
        if key is not None:
            self.backend.inspect_repo(key)
        to = request.to if self._set(request, "to") else None
        start = request.from_ if self._set(request, "from_") else None
        number = request.number or None
        if start is not None:
            from_id = self._commit(start).id
            if to is None:
                raise _unknown("cannot use `from` commit without `to` commit")
        if to is None:
            commits = self.backend.all_commits(key)  # newest first, as pachd orders by commit
            if request.reverse:
                commits = commits[::-1]
            since = request.started_time if calls.has(request, "started_time") else None
            sent = 0
            for c in commits:
                if not self._passes(c, request.all, request.origin_kind):
                    continue
                if since is not None and c.started is not None and not (
                        (not request.reverse and c.started < since) or (request.reverse and c.started > since)):
                    continue
                if number is not None and sent >= number:
                    return
                sent += 1
                yield self._commit_info(c)
            return
        if request.reverse:
            raise _unknown("cannot use 'Reverse' while also using 'From' or 'To'")
        to_key, ref = self._ref(to)
        cursor: Commit | None = self.backend.inspect_commit(to_key, ref)
        sent = 0
        while cursor is not None and (start is None or cursor.id != from_id):
            if number is not None and sent >= number:
                return
            if self._passes(cursor, request.all, request.origin_kind):
                sent += 1
                yield self._commit_info(cursor)
            cursor = self.backend.inspect_commit(to_key, cursor.parent) if cursor.parent else None

    def subscribe_commit(self, context, request: pfs.SubscribeCommitRequest):
        """Every commit of the repo (on ``branch``), then each new one as it appears, each once,
        once it reaches ``state``: pachd's WatchCommitsInRepo. Runs until the client goes away."""
        if not calls.has(request, "repo"):
            raise _unknown("repo cannot be nil")
        key = self._repo_key(request.repo)
        self.backend.inspect_repo(key)
        skip = self._commit(request.from_).id if self._set(request, "from_") else None
        seen: set[str] = set()
        while context.is_active():
            token = self.backend.change_token()
            try:
                commits = self.backend.all_commits(key)[::-1]
            except NotFound:
                return  # the repo was deleted: nothing more will come
            for c in commits:
                if c.id in seen or c.id == skip:
                    continue
                if request.branch and c.branch != request.branch:
                    continue
                if not self._passes(c, request.all, request.origin_kind):
                    continue
                c = self._wait(context, key, c, request.state)
                seen.add(c.id)
                yield self._commit_info(c)
            self.backend.wait_for_change(token, WAIT_SLICE)

    def _commit_set(self, commit_id: str) -> list[Commit]:
        """The commits of a commit set: here each commit is its own set (ids are unique)."""
        found = []
        for repo in self.backend.list_repos():
            try:
                found.append(self.backend.inspect_commit(repo.key, commit_id))
            except NotFound:
                continue
        return found

    def _existing_set(self, request) -> list[Commit]:
        commit_id = self._commit_set_id(request)
        commits = self._commit_set(commit_id)
        if not commits:
            raise Status(grpc.StatusCode.NOT_FOUND, f"no commits found for commitset {commit_id}")
        return commits

    def _commit_set_id(self, request) -> str:
        commit_id = request.commit_set.id if calls.has(request, "commit_set") else ""
        if not is_commit_id(commit_id):
            raise Status(grpc.StatusCode.NOT_FOUND, f"no commits found for commitset {commit_id}")
        return commit_id

    def inspect_commit_set(self, context, request: pfs.InspectCommitSetRequest):
        for c in self._existing_set(request):
            if request.wait:
                c = self._wait(context, c.repo, c, pfs.CommitState.FINISHED)
            yield self._commit_info(c)

    def list_commit_set(self, context, request: pfs.ListCommitSetRequest):
        project = request.project.name if calls.has(request, "project") else None
        for c in self.backend.all_commits():
            if project and split_key(c.repo)[0] != project:
                continue
            yield pfs.CommitSetInfo(commit_set=pfs.CommitSet(id=c.id), commits=[self._commit_info(c)])

    def _drop(self, commit: Commit) -> None:
        if commit.is_open:
            self.backend.abort_commit(commit)
            self._forget(commit.id)
            return
        if self.backend.children(commit.repo, commit.id):
            raise _unknown(f"cannot drop a commit that has children: {repo_text(commit.repo)}@{commit.id}")
        self.backend.drop_finished_commit(commit.repo, commit.id)

    def drop_commit(self, context, request: pfs.DropCommitRequest):
        self._drop(self._commit(request.commit))
        return pfs.DropCommitResponse()

    def drop_commit_set(self, context, request: pfs.DropCommitSetRequest):
        commits = self._existing_set(request)
        for c in commits:
            if not c.is_open and self.backend.children(c.repo, c.id):
                raise _unknown(f"cannot drop a commit that has children: {repo_text(c.repo)}@{c.id}")
        for c in commits:
            self._drop(c)
        return Empty()

    def _squash(self, commits: list[Commit]) -> None:
        for c in commits:
            children = self.backend.children(c.repo, c.id)
            if not children:
                raise _unknown(f"{SQUASH_WITHOUT_CHILDREN}: {repo_text(c.repo)}@{c.id}")
            for child in children:
                if child.is_open:
                    raise _unknown(f"cannot squash until child commit {repo_text(c.repo)}@{child.id} is finished")
            if len(children) > 1:
                raise Unimplemented(f"squashing commit {c.id}, which has {len(children)} children, is not served: "
                                    "the embedded store squashes a commit into its only child")
        for c in commits:
            try:
                self.backend.squash_commit(c.repo, c.id)
            except Conflict as exc:
                raise Unimplemented(f"{exc.message}: this shape of history cannot be squashed here") from None

    def squash_commit_set(self, context, request: pfs.SquashCommitSetRequest):
        self._squash(self._existing_set(request))
        return Empty()

    def squash_commit(self, context, request: pfs.SquashCommitRequest):
        self._squash([self._commit(request.commit)])
        return pfs.SquashCommitResponse()

    def find_commits(self, context, request: pfs.FindCommitsRequest):
        key, ref = self._ref(request.start)
        path = normalize_path(request.file_path or "/")
        commit: Commit | None = self.backend.inspect_commit(key, ref)
        found = searched = 0
        last = commit
        while commit is not None:
            if commit.is_open:
                raise Status(grpc.StatusCode.UNAVAILABLE, f"commit {repo_text(key)}@{commit.id} not finished")
            last = commit
            if self._modified(key, commit, path):
                found += 1
                yield pfs.FindCommitsResponse(found_commit=commit_msg(key, commit.id), commits_searched=searched)
            searched += 1
            if (request.limit and found == request.limit) or not commit.parent:
                break
            commit = self.backend.inspect_commit(key, commit.parent)
        yield pfs.FindCommitsResponse(last_searched_commit=commit_msg(key, last.id), commits_searched=searched)

    def _modified(self, key: str, commit: Commit, path: str) -> bool:
        """Whether the commit wrote or deleted ``path`` (a file, or a directory's entry)."""
        for change in self.backend.diff(key, commit.parent, commit.id, path):
            if change.path == path:
                return True
        return False

    def walk_commits(self, context, request):
        # Without commit provenance (pipelines), each start commit is its own whole walk.
        for n, picker in enumerate(request.start):
            if request.max_commits and n >= request.max_commits:
                return
            yield self._commit_info(self.pick_commit(picker))

    # -- writing files ---------------------------------------------------------------------------
    def modify_file(self, context, requests):
        commit: Commit | None = None
        key = ""
        current: tuple[str, object] | None = None  # (path, spool) of the file being written
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

        def need_commit():
            if commit is None:
                raise _unknown("ModifyFile: the first message must set the commit")
            if not self.backend.inspect_commit(key, commit.id).is_open:
                raise _unknown(f"commit {repo_text(key)}@{commit.id} has already finished")

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
                    path = normalize_path(body.path, allow_root=False)
                    if source == "url":
                        flush()
                        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
                        current = (path, spool)
                        if path not in deleted_here:
                            self._append_base(key, commit, path, spool)
                        _fetch(raw.url, spool)  # pachd appends what the URL serves
                        flush()
                        continue
                    if current is None or current[0] != path:
                        flush()
                        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
                        current = (path, spool)
                        if path not in deleted_here:
                            self._append_base(key, commit, path, spool)
                    if raw:
                        current[1].write(raw)
                elif kind == "delete_file":
                    flush()
                    need_commit()
                    path = normalize_path(body.path)
                    if body.path.endswith("/") or path == "/" or not self._is_dir_before(key, commit, path):
                        self.backend.delete_file(commit, path)
                    deleted_here.add(path)
                elif kind == "copy_file":
                    flush()
                    need_commit()
                    if body.append:
                        raise Unimplemented("copy_file with append is not served")
                    self._copy(commit, normalize_path(body.dst), body.src)
                else:
                    raise _unknown("ModifyFile: unrecognized message")
            if commit is None:
                raise _unknown("ModifyFile: no commit was set")
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

    def _append_base(self, key: str, commit: Commit, path: str, spool) -> None:
        """pachd's add_file appends: start from what the commit already holds for the path."""
        staged = self.backend.read_staged(commit, path)
        if staged is not None:  # written (or deleted) earlier in this open commit
            for chunk in staged:
                spool.write(chunk)
            return
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
    def _view(self, commit: Commit):
        """The commit's files as a reader sees them (an open commit: what it holds so far, as pachd)."""
        return OpenView(self.backend, commit) if commit.is_open else StoreView(self.backend, self.hasher, commit)

    def _file(self, file: pfs.File | None) -> tuple[Commit, str]:
        if file is None:
            raise _unknown("a file is required")
        commit = self._commit(file.commit if calls.has(file, "commit") else None)
        return commit, normalize_path(file.path or "/")

    def _not_found(self, commit: Commit, path: str) -> NotFound:
        return NotFound(f"file {path} not found in repo {repo_text(commit.repo)} at commit {commit.id}",
                        path=path)

    def _inspect(self, view, path: str) -> FileInfo:
        try:
            return view.inspect_file(path)
        except NotFound:
            raise self._not_found(view.commit, path) from None

    def _matched(self, file: pfs.File | None):
        """pachd reads GetFile's path as a glob: (view, the infos it matches); NOT_FOUND if none."""
        if file is None:
            raise _unknown("a file is required")
        raw = file.path or "/"
        if not GLOB_MAGIC & set(raw):
            commit, path = self._file(file)
            view = self._view(commit)
            return view, [self._inspect(view, path)]
        view = self._view(self._commit(file.commit if calls.has(file, "commit") else None))
        matched = sorted(view.glob(raw), key=lambda i: i.path)
        if not matched:
            raise self._not_found(view.commit, raw)
        return view, matched

    def get_file(self, context, request: pfs.GetFileRequest):
        if request.url:
            raise Unimplemented("GetFile to a URL is not served: the embedded store does not write to object storage")
        _refuse_path_range(request, "GetFile")
        view, matched = self._matched(request.file if calls.has(request, "file") else None)
        if any(info.is_dir for info in matched):
            raise _unknown("cannot get directory or non-regular file. Use GetFileTAR instead")
        if len(matched) > 1:
            raise _unknown("matched multiple files. Use GetFileTAR instead")
        for chunk in view.read_file(matched[0].path, offset=max(0, request.offset)):
            for start in range(0, len(chunk), GET_CHUNK):
                yield BytesValue(value=chunk[start:start + GET_CHUNK])

    def get_file_tar(self, context, request: pfs.GetFileRequest):
        """A tar stream of what the path (a glob) matches and everything below it, once each; entries
        are named by their absolute paths, directories end with '/', in path order, as pachd writes
        them. A finished commit is read in one pass (``Backend.read_tree``) and streamed as it is read."""
        if request.url:
            raise Unimplemented("GetFileTAR to a URL is not served: the embedded store does not write to object storage")
        _refuse_path_range(request, "GetFileTAR")
        view, matched = self._matched(request.file if calls.has(request, "file") else None)
        mtime = view.commit.finished.timestamp() if view.commit.finished else time.time()
        for piece in tar_stream(self._tar_entries(view, matched), mtime):
            for start in range(0, len(piece), GET_CHUNK):
                yield BytesValue(value=piece[start:start + GET_CHUNK])

    def _tar_entries(self, view, matched: list[FileInfo]):
        inside = None  # the directory last sent whole: what a glob also matched below it is in already
        for top in matched:
            if inside is not None and top.path.startswith(inside):
                continue
            if top.is_dir:
                inside = top.path if top.path.endswith("/") else top.path + "/"
            if isinstance(view, StoreView):
                if top.path == "/":
                    yield "/", top, None
                tree = self.backend.read_tree(view.commit.repo, view.commit.id, top.path)
            else:  # an open commit: what it holds so far, walked in memory
                tree = ((info, None if info.is_dir else view.read_file(info.path)) for info in self._walk(view, top))
            for info, chunks in tree:
                yield info.path, info, chunks

    def inspect_file(self, context, request: pfs.InspectFileRequest):
        commit, path = self._file(request.file)
        view = self._view(commit)
        if path == "/" and not view.list_dir("/", limit=1).items:
            raise self._not_found(commit, path)  # pachd: an empty commit has no "/" entry to inspect
        return self._file_info(commit, self._inspect(view, path), view)

    def _dir_entries(self, view, path: str, after: str | None) -> Iterator[FileInfo]:
        while True:
            page = view.list_dir(path, limit=1000, after=after)
            yield from page.items
            if page.next is None:
                return
            after = page.next

    def list_file(self, context, request: pfs.ListFileRequest):
        commit, path = self._file(request.file)
        view = self._view(commit)
        info = self._inspect(view, path)
        if not info.is_dir:
            yield self._file_info(commit, info, view)
            return
        marker = request.pagination_marker.path if calls.has(request, "pagination_marker") \
            and request.pagination_marker.path else None
        if request.reverse:
            items = [i for i in self._dir_entries(view, path, None) if marker is None or i.path < marker][::-1]
        else:
            items = self._dir_entries(view, path, marker)
        for n, item in enumerate(items):
            if request.number and n >= request.number:
                return
            yield self._file_info(commit, item, view)

    def _walk(self, view, info: FileInfo) -> Iterator[FileInfo]:
        yield info
        if info.is_dir:
            for child in self._dir_entries(view, info.path.rstrip("/") or "/", None):
                yield from self._walk(view, child)

    def walk_file(self, context, request: pfs.WalkFileRequest):
        commit, path = self._file(request.file)
        marker = request.pagination_marker.path if calls.has(request, "pagination_marker") \
            and request.pagination_marker.path else None
        view = self._view(commit)
        items = self._walk(view, self._inspect(view, path))
        if request.reverse:
            items = iter([i for i in items if marker is None or i.path < marker][::-1])
        elif marker is not None:
            items = (i for i in items if i.path > marker)
        for n, item in enumerate(items):
            if request.number and n >= request.number:
                return
            yield self._file_info(commit, item, view)

    def glob_file(self, context, request: pfs.GlobFileRequest):
        commit = self._commit(request.commit if calls.has(request, "commit") else None)
        view = self._view(commit)
        for info in sorted(view.glob(request.pattern), key=lambda i: i.path):
            yield self._file_info(commit, info, view)

    def diff_file(self, context, request: pfs.DiffFileRequest):
        """pachd's DiffFile: files *and directories* under ``new_file.path`` in the new commit
        against those under ``old_file.path`` in the old one (default: the same path in the new
        commit's parent), paired by path, in path order; a pair is reported when its hashes differ."""
        new, new_path = self._file(request.new_file if calls.has(request, "new_file") else None)
        if calls.has(request, "old_file") and self._set(request.old_file, "commit"):
            old, old_path = self._file(request.old_file)
            old_path = normalize_path(request.old_file.path or "/")
        else:
            old = self.backend.inspect_commit(new.repo, new.parent) if new.parent else None
            old_path = new_path
        if old is not None and old.repo == new.repo and old_path == new_path and not old.is_open \
                and not new.is_open:
            old_items, new_items = self._changed(old, new, new_path)
        else:
            old_items, new_items = self._scope(old, old_path), self._scope(new, new_path)
        for p in sorted(set(old_items) | set(new_items)):
            before, after = old_items.get(p), new_items.get(p)
            if before is not None and after is not None and before.hash == after.hash:
                continue
            reply = pfs.DiffFileResponse()
            if after is not None:
                reply.new_file = after
            if before is not None:
                reply.old_file = before
            yield reply

    def _changed(self, old: Commit, new: Commit, path: str) -> tuple[dict, dict]:
        """Like two ``_scope``s, but only the changed files and their directories (the store knows
        which files changed; a directory's hash changes exactly when something below it does)."""
        old_items: dict[str, pfs.FileInfo] = {}
        new_items: dict[str, pfs.FileInfo] = {}
        dirs: set[str] = set()
        scope = "/" if path == "/" else path + "/"
        for change in self.backend.diff(new.repo, old.id, new.id, path):
            if change.old is not None:
                old_items[change.path] = self._file_info(old, change.old)
            if change.new is not None:
                new_items[change.path] = self._file_info(new, change.new)
            node = change.path
            while node != "/":
                node = parent_dir(node)
                if not node.startswith(scope):  # above the diffed path
                    break
                dirs.add(node)
        for directory in dirs:
            for commit, items in ((old, old_items), (new, new_items)):
                try:
                    info = self.backend.inspect_file(commit.repo, commit.id, directory)
                except NotFound:
                    continue
                items[info.path] = self._file_info(commit, info)
        return old_items, new_items

    def _scope(self, commit: Commit | None, path: str) -> dict[str, pfs.FileInfo]:
        """Served infos of ``path`` and everything below it in ``commit``, by path."""
        if commit is None:
            return {}
        view = self._view(commit)
        try:
            top = view.inspect_file(path)
        except NotFound:
            return {}
        return {info.path: self._file_info(commit, info, view) for info in self._walk(view, top)}

    # -- maintenance -----------------------------------------------------------------------------
    def delete_all(self, context, request):
        for repo in self.backend.list_repos():
            self._delete_repo(repo.key)
        for name in self.backend.annotations("project"):
            self.backend.annotate("project", name, None)
        return Empty()

    def fsck(self, context, request: pfs.FsckRequest):
        if request.fix:
            raise Unimplemented("Fsck with fix is not served: the embedded store's fsck only reports")
        if calls.has(request, "zombie_target") or request.zombie_all:
            return  # zombie files are outputs of pipeline jobs; without pipelines there are none
        for problem in self.backend.fsck().problems:
            yield pfs.FsckResponse(error=problem)


__all__ = ["GET_CHUNK", "NOT_SERVED", "PfsService"]
