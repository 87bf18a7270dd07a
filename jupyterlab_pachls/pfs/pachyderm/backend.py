"""``PachydermBackend``: the ``Backend`` interface composed of the parts of this package; repos and
branches are here, commits go through ``landing``, reads through ``reads``."""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from pachyderm_sdk.api import pfs

from ..address import DEFAULT_PROJECT, parse_repo, validate_name
from ..backend import DEFAULT_PAGE, Backend, Content, check_commit_fields
from ..errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PfsError
from ..model import Branch, BranchMove, Commit, FileChange, FileInfo, FilePage, Provenance, Repo
from ..wire import branch_msg, commit_msg, repo_key_of, repo_msg, split_key
from .channel import QUICK_RPC_TIMEOUT, RPC_TIMEOUT, Channel, long_operation
from .landing import BranchLocks, StagedCommits
from .messages import Generations, KeptDecoder, head_id, is_finished, is_staging, repo_key, to_commit, to_repo
from .moves import META_REPO, BranchMoves
from .reads import GLOB_MAGIC, Reads
from .refs import Refs

#: A listed branch at a finished head is asked again once it is this old (seconds): a finished commit
#: does change now and then (SquashCommitSet re-parents it, EditMetadata edits it)...
LISTED_RECHECK = 60.0
#: ... at most this many per listing, so an unchanged poll costs a handful of calls however big the
#: cluster (ListRepo, ListBranch and these); a whole cluster's heads are rechecked over many polls.
RECHECKED_PER_LISTING = 3
#: Once pachd refused ListBranch of every repo (auth on), branches are listed per repo; every this many
#: seconds ListBranch of every repo is asked again (auth may have been turned off).
RETRY_ALL_BRANCHES = 300.0
#: Heads a listing inspects at once when it meets heads it has not seen (the first listing of a cluster:
#: one InspectCommit per branch); a few, so a big cluster's first poll is not one round trip per branch
#: in a row, and a small number of connections' worth of load on pachd.
INSPECTED_AT_ONCE = 8
#: pachd 2.12's answer to ListBranch without a repo when auth is on.
ALL_BRANCHES_REFUSED = "Cannot list branches from all repos with auth activated"
META_KEY = str(parse_repo(META_REPO))


def called_lazily(call, request) -> Iterator:
    """The replies of ``call(request)``, the call made on the first ``next`` as the SDK's stubs make it
    (``Channel.stream`` sets the call's deadline up around that)."""
    yield from call(request)


class PachydermBackend(Backend):
    kind = "pachyderm"

    def __init__(self, pachd_address: str | None = None, auth_token: str | None = None,
                 config_path: str | os.PathLike | None = None, *, connect_timeout: float = 5.0,
                 rpc_timeout: float = RPC_TIMEOUT, quick_rpc_timeout: float = QUICK_RPC_TIMEOUT) -> None:
        self.channel = Channel(pachd_address, auth_token, config_path, connect_timeout=connect_timeout,
                               rpc_timeout=rpc_timeout, quick_rpc_timeout=quick_rpc_timeout)
        self.pfs = self.channel.pfs
        self.refs = Refs(self.channel)
        self.locks = BranchLocks()
        self.commits = StagedCommits(self.channel, self.refs, self.locks)
        self.reads = Reads(self.channel, self.refs)
        self.moves = BranchMoves(self)
        #: (Branch, when inspected) as listed, by (repo key, branch, head id) while that head is a finished
        #: commit (or none): a head seen once is inspected again only after LISTED_RECHECK, a few a poll
        self._listed = Generations()
        self._all_branches_refused_at: float | None = None  # pachd refused ListBranch of every repo
        self._listed_repos = threading.local()  # this thread's last list_repos, for the branches per repo
        # The listings the panel polls, each distinct reply decoded once
        # (swapped after each complete listing: memory bounded by the cluster, not by its history)
        listed = self.channel.grpc_channel
        self._repo_replies, self._branch_replies = KeptDecoder(pfs.RepoInfo), KeptDecoder(pfs.BranchInfo)
        self._list_repo = listed.unary_stream("/pfs_v2.API/ListRepo",
                                              request_serializer=pfs.ListRepoRequest.SerializeToString,
                                              response_deserializer=self._repo_replies)
        self._list_branch = listed.unary_stream("/pfs_v2.API/ListBranch",
                                                request_serializer=pfs.ListBranchRequest.SerializeToString,
                                                response_deserializer=self._branch_replies)

    @property
    def address(self) -> str:
        return self.channel.address

    def close(self) -> None:
        self.channel.close()

    def ping(self) -> None:
        self.channel.ping()

    # -- calls to pachd; a crash test makes one by hand between two steps of a commit:
    # ``backend._rpc("FinishCommit", backend.pfs.finish_commit, commit=backend._commit_msg(repo, id))``
    _commit_msg = staticmethod(commit_msg)

    def _rpc(self, what: str, fn, **kwargs):
        return self.channel.rpc(what, fn, **kwargs)

    def _stream(self, what: str, fn, **kwargs) -> Iterator:
        return self.channel.stream(what, fn, **kwargs)

    # -- repos ---------------------------------------------------------------------------------
    @long_operation()
    def create_repo(self, repo: str, description: str = "") -> Repo:
        key = repo_key(repo)
        if not isinstance(description, str):
            raise InvalidArgument("description must be a string")
        project = parse_repo(key).project
        if project != DEFAULT_PROJECT:
            try:
                self._rpc("CreateProject", self.pfs.create_project, project=pfs.Project(name=project))
            except AlreadyExists:
                pass
        self._rpc("CreateRepo", self.pfs.create_repo, repo=repo_msg(key), description=description)
        return self.inspect_repo(key)

    def inspect_repo(self, repo: str) -> Repo:
        key = repo_key(repo)
        return to_repo(self._rpc("InspectRepo", self.pfs.inspect_repo, repo=repo_msg(key)))

    def list_repos(self) -> list[Repo]:
        infos = self._stream("ListRepo", called_lazily, call=self._list_repo, request=pfs.ListRepoRequest(type="user"))
        repos = [to_repo(i) for i in infos]
        repos = [r for r in repos if not (r.project == DEFAULT_PROJECT and r.name == META_REPO)]
        repos = sorted(repos, key=lambda r: (r.project, r.name))
        self._listed_repos.repos = repos  # a listing asks for every branch next: see ``_every_branch``
        self._repo_replies.kept.swap()
        return repos

    @long_operation()
    def delete_repo(self, repo: str) -> None:
        key = repo_key(repo)
        self.inspect_repo(key)
        self._rpc("DeleteRepo", self.pfs.delete_repo, repo=repo_msg(key), force=True)
        self.moves.forget(key)

    # -- branches ------------------------------------------------------------------------------
    def _branch(self, key: str, name: str) -> Branch:
        head = self.refs.head(key, name)
        return Branch(repo=key, name=name, head=to_commit(head, key, name) if head is not None else None)

    @long_operation()
    def create_branch(self, repo: str, branch: str, head: str | None = None) -> Branch:
        validate_name(branch, "branch")
        key = self.inspect_repo(repo).key
        try:
            self._rpc("InspectBranch", self.pfs.inspect_branch, branch=branch_msg(key, branch))
        except NotFound:
            pass
        else:
            raise AlreadyExists(f"branch {branch} already exists in repo {key}", repo=key, branch=branch)
        kwargs = {"branch": branch_msg(key, branch)}
        if head is not None:
            _, info = self.refs.resolve(key, head)
            if not is_finished(info):
                raise Conflict(f"commit {info.commit.id} is still open; a branch can only point at a finished commit")
            kwargs["head"] = self._commit_msg(key, info.commit.id)
        self._rpc("CreateBranch", self.pfs.create_branch, **kwargs)
        return self.inspect_branch(key, branch)

    def inspect_branch(self, repo: str, branch: str) -> Branch:
        validate_name(branch, "branch")
        return self._branch(repo_key(repo), branch)

    def list_branches(self, repo: str | None = None) -> list[Branch]:
        """ListBranch (of every repo at once when ``repo`` is None), then only the heads not seen before:
        what a poll of an unchanged cluster costs does not grow with its repos and branches."""
        if repo is not None:
            key = self.inspect_repo(repo).key
            infos = list(self._stream("ListBranch", called_lazily, call=self._list_branch,
                                      request=pfs.ListBranchRequest(repo=repo_msg(key))))
        else:
            infos = self._every_branch(getattr(self._listed_repos, "repos", None))
        self._listed_repos.repos = None
        heads = []
        for info in infos:
            of, name = info.branch.repo, info.branch.name
            key = repo_key_of(of)
            # ListBranch of every repo has pipelines' spec and meta repos too, and our own meta repo
            if of.type not in ("", "user") or is_staging(name) or (repo is None and key == META_KEY):
                continue
            heads.append(((*split_key(key), name), key, head_id(info)))
        heads.sort()  # as list_repos orders repos, then by branch name
        rechecks = [RECHECKED_PER_LISTING]
        known = [self._known_branch(key, order[2], head, rechecks) for order, key, head in heads]
        asked = [(key, order[2], head) for (order, key, head), branch in zip(heads, known) if branch is None]
        inspected = iter(self._inspect_listed(asked))
        branches = [branch if branch is not None else next(inspected) for branch in known]
        branches = [branch for branch in branches if branch is not None]
        if repo is None:  # a complete listing: forget what neither it nor the one before saw
            self._branch_replies.kept.swap()
            self._listed.swap()
        return branches

    def _every_branch(self, repos: list[Repo] | None) -> list[pfs.BranchInfo]:
        """Every branch of every repo: one ListBranch without a repo; one per repo (of ``repos``, this
        thread's last ``list_repos``, else asked) where pachd refuses that (auth on)."""
        refused_at = self._all_branches_refused_at
        if refused_at is None or time.monotonic() - refused_at > RETRY_ALL_BRANCHES:
            try:
                infos = list(self._stream("ListBranch", called_lazily, call=self._list_branch,
                                          request=pfs.ListBranchRequest()))
            except PfsError as exc:
                if ALL_BRANCHES_REFUSED not in str(exc):
                    raise
                self._all_branches_refused_at = time.monotonic()  # auth on: ask per repo for a while
            else:
                self._all_branches_refused_at = None
                return infos
        infos = []
        for r in self.list_repos() if repos is None else repos:
            try:
                infos.extend(self._stream("ListBranch", called_lazily, call=self._list_branch,
                                          request=pfs.ListBranchRequest(repo=repo_msg(r.key))))
            except NotFound:  # deleted since ListRepo
                pass
        return infos

    def _known_branch(self, key: str, name: str, head: str | None, rechecks: list[int]) -> Branch | None:
        """The branch as a listing showed it at ``head``, or None when it must be inspected: a head not
        seen, or one seen over LISTED_RECHECK ago while ``rechecks[0]`` (this listing's) lasts."""
        found = self._listed.get((key, name, head))
        if found is None:
            return None
        branch, inspected = found
        if head is None or time.monotonic() - inspected < LISTED_RECHECK or rechecks[0] <= 0:
            return branch
        rechecks[0] -= 1
        return None

    def _inspect_listed(self, asked: list[tuple[str, str, str | None]]) -> list[Branch | None]:
        """``_listed_branch`` of each (repo key, branch, head), in order (None: its repo was deleted),
        INSPECTED_AT_ONCE at a time when there are several; the first failure is raised, the rest not
        asked."""
        if len(asked) <= 1:
            return [self._listed_branch(*one) for one in asked]
        with ThreadPoolExecutor(min(INSPECTED_AT_ONCE, len(asked)), thread_name_prefix="pachls-listing") as pool:
            # each call in the caller's context (a long operation's deadlines, if inside one)
            futures = [pool.submit(contextvars.copy_context().run, self._listed_branch, *one) for one in asked]
            try:
                return [future.result() for future in futures]
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise

    def _listed_branch(self, key: str, name: str, head: str | None) -> Branch | None:
        """The branch as readers see it at ``head`` (``Refs.shown``), kept for later listings; None when
        its repo was deleted since ListBranch (it is gone)."""
        try:
            info = self.refs.shown(key, head)
        except NotFound:
            return None
        branch = Branch(repo=key, name=name, head=to_commit(info, key, name) if info is not None else None)
        # Kept only for an empty branch or a finished head: an open head (shown as its parent, or as
        # nothing when it is the branch's first commit) changes when it finishes, so it is asked again
        if head is None or (info is not None and info.commit.id == head and is_finished(info)):
            self._listed.put((key, name, head), (branch, time.monotonic()))
        return branch

    @long_operation()
    def delete_branch(self, repo: str, branch: str) -> None:
        found = self.inspect_branch(repo, branch)
        self._rpc("DeleteBranch", self.pfs.delete_branch, branch=branch_msg(found.repo, branch), force=True)

    @long_operation()
    def move_branch(self, repo: str, branch: str, to: str, *, expected_head: str | None = None,
                    author: str = "", reason: str = "rollback") -> Branch:
        validate_name(branch, "branch")
        key, target = self.refs.resolve(repo, to)
        if not is_finished(target):
            raise Conflict(f"commit {target.commit.id} is still open; a branch can only point at a finished commit")
        with self.locks(key, branch):
            current = self.refs.head(key, branch)
            old = current.commit.id if current is not None else None
            if expected_head is not None and old != expected_head:
                raise Conflict(f"branch {branch} moved: its head is {old}, not {expected_head}",
                               branch=branch, head=old, expected=expected_head)
            self._rpc("CreateBranch", self.pfs.create_branch, branch=branch_msg(key, branch),
                      head=self._commit_msg(key, target.commit.id))
        self.moves.record(key, branch, old, target.commit.id, str(author), str(reason))
        return self.inspect_branch(key, branch)

    def branch_moves(self, repo: str, branch: str) -> list[BranchMove]:
        return self.moves.of(self.inspect_repo(repo).key, branch)

    # -- commits -------------------------------------------------------------------------------
    @long_operation()
    def start_commit(self, repo: str, branch: str, *, message: str = "", author: str = "",
                     provenance: Iterable[Provenance] = (), metadata: dict[str, str] | None = None) -> Commit:
        validate_name(branch, "branch")
        key = repo_key(repo)
        metadata = check_commit_fields(message, author, metadata)
        key = self.inspect_repo(key).key
        return self.commits.start(key, branch, message=message, author=author, provenance=provenance,
                                  metadata=metadata)

    @long_operation()
    def put_files(self, commit: Commit, items: Iterable[tuple[str, Content]]) -> int:
        return self.commits.put_files(commit, items)

    @long_operation()
    def delete_file(self, commit: Commit, path: str) -> None:
        self.commits.delete_file(commit, path)

    @long_operation()
    def finish_commit(self, commit: Commit, *, expected_parent: str | None = None) -> Commit:
        return self.commits.finish(commit, expected_parent=expected_parent)

    @long_operation()
    def abort_commit(self, commit: Commit) -> None:
        self.commits.abort(commit)

    def inspect_commit(self, repo: str, ref: str) -> Commit:
        return self.reads.inspect_commit(repo, ref)

    def list_commits(self, repo: str, ref: str, *, limit: int = 50, before: str | None = None) -> list[Commit]:
        return self.reads.list_commits(repo, ref, limit=limit, before=before)

    # -- files ---------------------------------------------------------------------------------
    def list_dir(self, repo: str, ref: str, path: str = "/", *, limit: int = DEFAULT_PAGE,
                 after: str | None = None) -> FilePage:
        return self.reads.list_dir(repo, ref, path, limit=limit, after=after)

    def inspect_file(self, repo: str, ref: str, path: str) -> FileInfo:
        return self.reads.inspect_file(repo, ref, path)

    def read_file(self, repo: str, ref: str, path: str, *, offset: int = 0,
                  length: int | None = None) -> Iterator[bytes]:
        return self.reads.read_file(repo, ref, path, offset=offset, length=length)

    def read_tree(self, repo: str, ref: str, path: str = "/") -> Iterator[tuple[FileInfo, Iterator[bytes] | None]]:
        if GLOB_MAGIC & set(str(path)):
            # pachd reads GetFileTAR's path as a glob, which could name other files: GetFile reads it
            # (as a glob too, but one that matches several files or a directory is refused there)
            return super().read_tree(repo, ref, path)
        return self.reads.read_tree(repo, ref, path)

    def diff(self, repo: str, old_ref: str | None, new_ref: str, path: str = "/") -> list[FileChange]:
        return self.reads.diff(repo, old_ref, new_ref, path)
