"""What every call goes through, as in pachd's interceptors.

- Request validation: a request that pachd's ``ValidateAll`` rejects (the ``validate.rules`` of
  pachd's protos: required messages, required oneofs, non-empty keys) is answered
  INVALID_ARGUMENT "validate request: ..." (unary calls) or "validate recv: ..." (streams), with
  the validator's wording, before the handler runs.
- ``Commit.branch`` is cleared in responses, in exactly the messages pachd's ``NilBranch``
  walks (``src/pfs/pfs.go``): a Commit, CommitInfo.commit and .parent_commit, File.commit,
  FileInfo.file, both sides of DiffFileResponse, BranchInfo.head, each commit of a CommitSetInfo,
  and the commit of a FindCommitsResponse.
- One debug-level log line per call: method, status code, duration.
- With a token (``jupyter pachls serve --auth-token-file``), ``TokenCheck`` answers a call that
  does not carry it in the ``authn-token`` metadata as pachd's auth interceptor does with auth on.
- Typed errors become pachd's status codes (``errors.abort``); ``Unimplemented`` and ``Status``
  carry an explicit code.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import logging
import time
from collections.abc import Callable, Iterator

import betterproto
import grpc
from pachyderm_sdk.api import auth, metadata, pfs, transaction

from ..errors import PfsError
from .errors import abort

log = logging.getLogger("jupyterlab_pachls.pfs.server")


class Status(Exception):
    """Answer the call with this gRPC status code and message (pachd's own code for the case)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Unimplemented(Status):
    """A method or an option this server does not serve; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.UNIMPLEMENTED, message)


def has(msg: betterproto.Message, name: str) -> bool:
    """Whether a message field is set (reading an unset one with betterproto would create it)."""
    raw = msg._Message__raw_get(name)  # noqa: SLF001 - betterproto has no public "is set" for message fields
    return raw is not betterproto.PLACEHOLDER and raw is not None


# -- NilBranch -----------------------------------------------------------------------------------
def _nil_commit(msg, name: str) -> None:
    if has(msg, name):
        getattr(msg, name).branch = None


def nil_branch(msg):
    """Clear Commit.branch where pachd's validation interceptor does; return ``msg``."""
    if isinstance(msg, pfs.Commit):
        msg.branch = None
    elif isinstance(msg, pfs.CommitInfo):
        _nil_commit(msg, "commit")
        _nil_commit(msg, "parent_commit")
    elif isinstance(msg, pfs.File):
        _nil_commit(msg, "commit")
    elif isinstance(msg, pfs.FileInfo):
        if has(msg, "file"):
            _nil_commit(msg.file, "commit")
    elif isinstance(msg, pfs.DiffFileResponse):
        for side in ("old_file", "new_file"):
            if has(msg, side):
                nil_branch(getattr(msg, side))
    elif isinstance(msg, pfs.BranchInfo):
        _nil_commit(msg, "head")
    elif isinstance(msg, pfs.CommitSetInfo):
        for info in msg.commits:
            nil_branch(info)
    elif isinstance(msg, pfs.FindCommitsResponse):
        kind, value = betterproto.which_one_of(msg, "result")
        if kind:
            value.branch = None
    return msg


# -- ValidateAll ---------------------------------------------------------------------------------
#: (request type, field, Go name of the field): message fields pachd's protos mark required.
_REQUIRED = {
    pfs.DropCommitSetRequest: [("commit_set", "CommitSet")],
    pfs.FindCommitsRequest: [("start", "Start")],
    pfs.DeleteBranchRequest: [("branch", "Branch")],
    pfs.InspectProjectRequest: [("project", "Project")],
    pfs.InspectProjectV2Request: [("project", "Project")],
    pfs.CopyFile: [("src", "Src")],
    transaction.InspectTransactionRequest: [("transaction", "Transaction")],
    transaction.DeleteTransactionRequest: [("transaction", "Transaction")],
    transaction.FinishTransactionRequest: [("transaction", "Transaction")],
    auth.GetRoleBindingRequest: [("resource", "Resource")],
    auth.ModifyRoleBindingRequest: [("resource", "Resource")],
    auth.GetPermissionsRequest: [("resource", "Resource")],
    auth.GetPermissionsForPrincipalRequest: [("resource", "Resource")],
    auth.AuthorizeRequest: [("resource", "Resource")],
    auth.RestoreAuthTokenRequest: [("token", "Token")],
}
_GO_NAMES = {metadata.EditReplace: "Edit_Replace", metadata.EditAddKey: "Edit_AddKey",
             metadata.EditEditKey: "Edit_EditKey", metadata.EditDeleteKey: "Edit_DeleteKey"}


def _go_name(msg) -> str:
    return _GO_NAMES.get(type(msg), type(msg).__name__)


def _error(msg, field: str, reason: str, cause: str = "") -> str:
    return f"invalid {_go_name(msg)}.{field}: {reason}" + (f" | caused by: {cause}" if cause else "")


@functools.lru_cache(maxsize=None)
def _field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _go_field(name: str) -> str:
    return "".join(part.title() for part in name.rstrip("_").split("_"))


def validate_all(msg) -> str:
    """pachd's ``ValidateAll`` of ``msg`` (its rules, then every embedded message's, recursively):
    "" if valid, else the validator's message."""
    errors: list[str] = []
    for name, go in _REQUIRED.get(type(msg), ()):
        if not has(msg, name):
            errors.append(_error(msg, go, "value is required"))
    if isinstance(msg, metadata.Edit):
        for group, go in (("target", "Target"), ("op", "Op")):
            if not betterproto.which_one_of(msg, group)[0]:
                errors.append(_error(msg, go, "value is required"))
    elif isinstance(msg, (metadata.EditAddKey, metadata.EditEditKey, metadata.EditDeleteKey)):
        if len(msg.key) < 1:
            errors.append(_error(msg, "Key", "value length must be at least 1 runes"))
    elif isinstance(msg, metadata.EditReplace):
        for key in msg.replacement:
            if len(key) < 1:
                errors.append(f"invalid key for {_go_name(msg)}.Replacement[{key}]: value length must be at least 1 runes")
    for name in _field_names(type(msg)):
        value = msg._Message__raw_get(name)  # noqa: SLF001 - unset message fields stay unset
        if isinstance(value, betterproto.Message):
            cause = validate_all(value)
            if cause:
                errors.append(_error(msg, _go_field(name), "embedded message failed validation", cause))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, betterproto.Message):
                    cause = validate_all(item)
                    if cause:
                        errors.append(_error(msg, f"{_go_field(name)}[{i}]", "embedded message failed validation",
                                             cause))
    return "; ".join(errors)


# -- handlers ------------------------------------------------------------------------------------
def _answer(context: grpc.ServicerContext, exc: BaseException, outcome: list) -> None:
    """Abort the call for ``exc`` (raises); record the status code in ``outcome``."""
    if isinstance(exc, PfsError):
        from .errors import status_of

        outcome[0] = status_of(exc)
        abort(context, exc)
    if isinstance(exc, Status):
        outcome[0] = exc.code
        context.abort(exc.code, exc.message)
    raise exc


def _log(path: str, started: float, outcome: list) -> None:
    if log.isEnabledFor(logging.DEBUG):
        code = outcome[0]
        log.debug("%s %s %.1fms", path, code.name if code else "UNKNOWN", (time.monotonic() - started) * 1000)


def _check(request: betterproto.Message, where: str) -> None:
    """pachd's ValidateAll on a request: INVALID_ARGUMENT ``<where>: <problem>`` when it fails."""
    problem = validate_all(request)
    if problem:
        raise Status(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {problem}")


def unary(path: str, fn: Callable, request_cls) -> grpc.RpcMethodHandler:
    def behavior(request, context):
        started, outcome = time.monotonic(), [None]
        try:
            _check(request, "validate request")
            reply = nil_branch(fn(context, request))
            outcome[0] = grpc.StatusCode.OK
            return reply
        except (PfsError, Status) as exc:
            _answer(context, exc, outcome)
        finally:
            _log(path, started, outcome)

    return grpc.unary_unary_rpc_method_handler(
        behavior, request_deserializer=lambda data: request_cls().parse(data), response_serializer=bytes)


def server_stream(path: str, fn: Callable, request_cls) -> grpc.RpcMethodHandler:
    def behavior(request, context):
        started, outcome = time.monotonic(), [None]
        try:
            _check(request, "validate recv")
            for reply in fn(context, request):
                yield nil_branch(reply)
            outcome[0] = grpc.StatusCode.OK
        except (PfsError, Status) as exc:
            _answer(context, exc, outcome)
        except GeneratorExit:
            outcome[0] = grpc.StatusCode.CANCELLED
            raise
        finally:
            _log(path, started, outcome)

    return grpc.unary_stream_rpc_method_handler(
        behavior, request_deserializer=lambda data: request_cls().parse(data), response_serializer=bytes)


def _validated(requests: Iterator) -> Iterator:
    for request in requests:
        _check(request, "validate recv")
        yield request


def client_stream(path: str, fn: Callable, request_cls) -> grpc.RpcMethodHandler:
    def behavior(requests, context):
        started, outcome = time.monotonic(), [None]
        try:
            reply = nil_branch(fn(context, _validated(requests)))
            outcome[0] = grpc.StatusCode.OK
            return reply
        except (PfsError, Status) as exc:
            _answer(context, exc, outcome)
        finally:
            _log(path, started, outcome)

    return grpc.stream_unary_rpc_method_handler(
        behavior, request_deserializer=lambda data: request_cls().parse(data), response_serializer=bytes)


def refused(path: str, kind: str, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A method answered with one fixed status (a feature that is off or not served here)."""
    def reply(request, context):
        started = time.monotonic()
        try:
            context.abort(code, message)
        finally:
            _log(path, started, [code])

    def reply_stream(request, context):
        reply(request, context)
        yield b""  # never reached: makes this a generator, as a streaming handler must be

    raw = {"request_deserializer": None, "response_serializer": None}
    if kind == "unary_unary":
        return grpc.unary_unary_rpc_method_handler(reply, **raw)
    if kind == "unary_stream":
        return grpc.unary_stream_rpc_method_handler(reply_stream, **raw)
    if kind == "stream_unary":
        return grpc.stream_unary_rpc_method_handler(reply, **raw)
    return grpc.stream_stream_rpc_method_handler(reply_stream, **raw)


# -- authentication ------------------------------------------------------------------------------
#: The metadata key pachd reads the caller's token from (``constants.ContextTokenKey``).
TOKEN_KEY = "authn-token"
#: pachd's ``auth.ErrNotSignedIn`` and ``auth.ErrBadToken`` (both UNAUTHENTICATED), and the plain
#: error of ``auth.GetAuthToken`` for a call carrying the key twice.
NOT_SIGNED_IN = "no authentication token (try logging in)"
BAD_TOKEN = "provided auth token is corrupted or has expired (try logging in again)"
TWO_TOKENS = "multiple authentication token keys found in context"

#: Methods served here that pachd's auth interceptor lets through without a token. WhoAmI and
#: Authorize are let through there too but check the token themselves with the same answers, and
#: GetFileTAR checks it per commit read, so here all three need it.
OPEN_METHODS = frozenset({
    "/admin_v2.API/InspectCluster", "/versionpb_v2.API/GetVersion", "/auth_v2.API/Activate",
    "/auth_v2.API/Authenticate", "/auth_v2.API/GetOIDCLogin", "/enterprise_v2.API/GetState",
    "/license_v2.API/Heartbeat",
})


def token_refusal(metadata, token: bytes) -> Status | None:
    """pachd's answer to a call whose ``metadata`` does not carry ``token``; None if it does."""
    sent = [value for key, value in metadata or () if key == TOKEN_KEY]
    if not sent:
        return Status(grpc.StatusCode.UNAUTHENTICATED, NOT_SIGNED_IN)
    if len(sent) > 1:
        return Status(grpc.StatusCode.UNKNOWN, TWO_TOKENS)
    value = sent[0].encode() if isinstance(sent[0], str) else sent[0]
    if not hmac.compare_digest(value, token):  # constant time: the answer's timing tells nothing of the token
        return Status(grpc.StatusCode.UNAUTHENTICATED, BAD_TOKEN)
    return None


def _kind(handler: grpc.RpcMethodHandler) -> str:
    return {(False, False): "unary_unary", (False, True): "unary_stream", (True, False): "stream_unary",
            (True, True): "stream_stream"}[(bool(handler.request_streaming), bool(handler.response_streaming))]


class TokenCheck(grpc.ServerInterceptor):
    """Every call but ``OPEN_METHODS`` must carry the token, as on a pachd with auth on."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def __repr__(self) -> str:
        return "TokenCheck(<token>)"

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method in OPEN_METHODS:
            return handler
        refusal = token_refusal(handler_call_details.invocation_metadata, self._token)
        if refusal is None:
            return handler
        return refused(method, _kind(handler), refusal.code, refusal.message)


class _Recorder:
    """A stand-in channel that records the methods an SDK stub declares."""

    def __init__(self) -> None:
        self.methods: dict[str, str] = {}

    def _record(self, kind):
        def make(path, **_kwargs):
            self.methods[path] = kind
            return None
        return make

    def __getattr__(self, kind):
        if kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            return self._record(kind)
        raise AttributeError(kind)


def stub_methods(stub_cls) -> dict[str, str]:
    """``{"/service/Method": kind}`` for every method of a ``pachyderm_sdk`` generated ``ApiStub``."""
    recorder = _Recorder()
    stub_cls(recorder)
    return recorder.methods


__all__ = ["BAD_TOKEN", "NOT_SIGNED_IN", "OPEN_METHODS", "TOKEN_KEY", "Status", "TokenCheck",
           "Unimplemented", "client_stream", "has", "log", "nil_branch", "refused",
           "server_stream", "stub_methods", "unary", "validate_all"]
