"""``transaction_v2.API``: start / append / inspect / list / finish / delete / batch.

As in pachd, a call to CreateRepo, DeleteRepo, StartCommit, FinishCommit, SquashCommitSet,
CreateBranch or DeleteBranch that carries the ``pach-transaction`` header (what
``pachyderm_sdk.Client`` sends inside ``client.transaction.transaction()``) is not run but
appended to that transaction; StartCommit answers at once with the id its commit will have.
FinishTransaction (or BatchTransaction) runs the requests in order. Transactions are kept in the
store, so they survive a restart as pachd's do.

Differences (see docs/pachyderm-compat.md): when a request is appended, only what repos, branches
and commits it needs is checked (pachd dry-runs the whole transaction); a failing request undoes the
repos created and the commits started by the requests before it, but not branch moves, finished
commits or deletions (pachd rolls back one database transaction); each commit keeps its own id
(pachd gives every commit of a transaction the transaction's id: one commit set), the first
StartCommit's commit takes the transaction's id. Pipeline requests (update_job_state, stop_job,
create_pipeline_v2) are UNIMPLEMENTED.
"""

from __future__ import annotations

import base64
import threading
import uuid
from datetime import datetime, timezone

import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs, transaction

from ..errors import AlreadyExists, NotFound, PfsError
from . import calls
from .calls import Status, Unimplemented

HEADER = "pach-transaction"
#: TransactionRequest fields this server runs, and the PfsService method for each.
RUNNABLE = {
    "create_repo": "create_repo",
    "delete_repo": "delete_repo",
    "start_commit": "start_commit",
    "finish_commit": "finish_commit",
    "squash_commit_set": "squash_commit_set",
    "create_branch": "create_branch",
    "delete_branch": "delete_branch",
}
PIPELINE_REQUESTS = ("update_job_state", "stop_job", "create_pipeline_v2")


def transaction_of(context) -> str:
    """The transaction id a call carries in its ``pach-transaction`` header, or ""."""
    if context is None:
        return ""
    for key, value in context.invocation_metadata() or ():
        if key == HEADER:
            return value
    return ""


def _request_kind(request: transaction.TransactionRequest) -> str:
    for name in (*RUNNABLE, *PIPELINE_REQUESTS):
        if calls.has(request, name):
            return name
    return ""


class TransactionService:
    def __init__(self, pfs_service) -> None:
        self.pfs = pfs_service
        self.backend = pfs_service.backend
        self._lock = threading.RLock()

    # -- storage -----------------------------------------------------------------------------------
    def _load(self, txn_id: str) -> transaction.TransactionInfo:
        record = self.backend.annotation("transaction", txn_id) if txn_id else None
        if record is None:
            raise Status(grpc.StatusCode.NOT_FOUND, f"transaction {txn_id} not found")
        return transaction.TransactionInfo().parse(base64.b64decode(record["info"]))

    def _save(self, info: transaction.TransactionInfo) -> None:
        self.backend.annotate("transaction", info.transaction.id,
                              {"info": base64.b64encode(bytes(info)).decode("ascii")})

    @staticmethod
    def _new() -> transaction.TransactionInfo:
        return transaction.TransactionInfo(transaction=transaction.Transaction(id=uuid.uuid4().hex),
                                           started=datetime.now(timezone.utc))

    @staticmethod
    def commit_id(txn_id: str, index: int) -> str:
        """The id of the ``index``-th commit a transaction starts."""
        return txn_id if index == 0 else uuid.uuid5(uuid.UUID(txn_id), str(index)).hex

    # -- appending (pfs calls made inside a transaction) --------------------------------------------
    def _check(self, info: transaction.TransactionInfo, field: str, request) -> None:
        """The errors pachd's dry run of the transaction would raise at once for this request, as far
        as repos, branches and commits go (what earlier requests create or delete included)."""
        repos = {r.key for r in self.backend.list_repos()}
        started = set()
        for earlier in info.requests:
            kind = _request_kind(earlier)
            value = getattr(earlier, kind) if kind else None
            if kind == "create_repo":
                repos.add(self.pfs._repo_key(value.repo))
            elif kind == "delete_repo" and calls.has(value, "repo"):
                repos.discard(self.pfs._repo_key(value.repo))
            elif kind == "start_commit":
                started.add(self.commit_id(info.transaction.id, len(started)))

        def need_repo(repo) -> str:
            key = self.pfs._repo_key(repo)
            if key not in repos:
                raise NotFound(f"repo {key} not found", repo=key)
            return key

        if field == "create_repo":
            key = self.pfs._repo_key(request.repo if calls.has(request, "repo") else None)
            if key in repos and not request.update:
                raise AlreadyExists(f"repo {key} already exists", repo=key)
        elif field in ("start_commit", "create_branch", "delete_branch") and calls.has(request, "branch"):
            need_repo(request.branch.repo if calls.has(request.branch, "repo") else None)
        elif field == "finish_commit" and calls.has(request, "commit") and request.commit.id in started:
            return
        elif field == "finish_commit" and calls.has(request, "commit"):
            self.pfs._commit(request.commit)  # NOT_FOUND for a commit that neither exists nor is started here

    def append(self, txn_id: str, field: str, request):
        with self._lock:
            info = self._load(txn_id)
            self._check(info, field, request)
            response = transaction.TransactionResponse()
            reply = Empty()
            if field == "start_commit":
                starts = sum(1 for r in info.requests if calls.has(r, "start_commit"))
                key, name = self.pfs._branch_name(request.branch if calls.has(request, "branch") else None)
                reply = response.commit = pfs.Commit(repo=request.branch.repo, id=self.commit_id(txn_id, starts),
                                                     branch=pfs.Branch(repo=request.branch.repo, name=name))
            elif field == "delete_repo":
                reply = pfs.DeleteRepoResponse(deleted=True)
            info.requests.append(transaction.TransactionRequest(**{field: request}))
            info.responses.append(response)
            info.version += 1
            self._save(info)
            return reply

    # -- running ------------------------------------------------------------------------------------
    def _run(self, info: transaction.TransactionInfo) -> transaction.TransactionInfo:
        result = transaction.TransactionInfo(transaction=info.transaction, requests=list(info.requests),
                                             started=info.started, version=info.version)
        created_repos: list[str] = []
        started: list[tuple[str, str]] = []
        starts = 0
        for i, request in enumerate(info.requests):
            kind = _request_kind(request)
            response = transaction.TransactionResponse()
            try:
                if kind in PIPELINE_REQUESTS:
                    raise Unimplemented(f"{kind} is not served: the embedded store runs no pipelines")
                if not kind:
                    raise Status(grpc.StatusCode.UNKNOWN, "unrecognized transaction request type")
                value = getattr(request, kind)
                if kind == "start_commit":
                    commit = self.pfs.start_commit(None, value, commit_id=self.commit_id(info.transaction.id, starts))
                    starts += 1
                    started.append((self.pfs._repo_key(commit.repo), commit.id))
                    response.commit = commit
                else:
                    if kind == "create_repo":
                        key = self.pfs._repo_key(value.repo if calls.has(value, "repo") else None)
                        exists = any(r.key == key for r in self.backend.list_repos())
                    getattr(self.pfs, RUNNABLE[kind])(None, value)
                    if kind == "create_repo" and not exists:
                        created_repos.append(key)
            except (PfsError, Status) as exc:
                self._undo(created_repos, started)
                code = exc.code if isinstance(exc, Status) else None
                message = f"error running request {i + 1} of {len(info.requests)}: {exc}"
                if code is None:
                    from .errors import status_of

                    code = status_of(exc)
                raise Status(code, message) from exc
            result.responses.append(response)
        return result

    def _undo(self, created_repos: list[str], started: list[tuple[str, str]]) -> None:
        for key, commit_id in reversed(started):
            try:
                commit = self.backend.inspect_commit(key, commit_id)
                if commit.is_open:
                    self.backend.abort_commit(commit)
                self.pfs._forget(commit_id)
            except NotFound:
                continue
        for key in created_repos:
            try:
                self.pfs._delete_repo(key)
            except NotFound:
                continue

    # -- transaction_v2.API ---------------------------------------------------------------------------
    def start_transaction(self, context, request):
        info = self._new()
        self._save(info)
        return info.transaction

    def inspect_transaction(self, context, request: transaction.InspectTransactionRequest):
        return self._load(request.transaction.id)

    def delete_transaction(self, context, request: transaction.DeleteTransactionRequest):
        with self._lock:
            self._load(request.transaction.id)
            self.backend.annotate("transaction", request.transaction.id, None)
        return Empty()

    def list_transaction(self, context, request):
        infos = [self._load(txn_id) for txn_id in self.backend.annotations("transaction")]
        infos.sort(key=lambda i: i.started)
        return transaction.TransactionInfos(transaction_info=infos)

    def finish_transaction(self, context, request: transaction.FinishTransactionRequest):
        with self._lock:
            info = self._load(request.transaction.id)
            result = self._run(info)
            self.backend.annotate("transaction", info.transaction.id, None)
            return result

    def batch_transaction(self, context, request: transaction.BatchTransactionRequest):
        info = self._new()
        info.requests = list(request.requests)
        with self._lock:
            return self._run(info)

    def delete_all(self, context, request):
        with self._lock:
            for txn_id in self.backend.annotations("transaction"):
                self.backend.annotate("transaction", txn_id, None)
        return Empty()

    def services(self) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
        t = transaction
        served = {
            "BatchTransaction": (self.batch_transaction, t.BatchTransactionRequest),
            "StartTransaction": (self.start_transaction, t.StartTransactionRequest),
            "InspectTransaction": (self.inspect_transaction, t.InspectTransactionRequest),
            "DeleteTransaction": (self.delete_transaction, t.DeleteTransactionRequest),
            "ListTransaction": (self.list_transaction, t.ListTransactionRequest),
            "FinishTransaction": (self.finish_transaction, t.FinishTransactionRequest),
            "DeleteAll": (self.delete_all, t.DeleteAllRequest),
        }
        methods = {}
        for path, _kind in calls.stub_methods(t.ApiStub).items():
            name = path.rsplit("/", 1)[1]
            fn, request_cls = served[name]
            methods[name] = calls.unary(path, fn, request_cls)
        return {"transaction_v2.API": methods}


__all__ = ["HEADER", "TransactionService", "transaction_of"]
