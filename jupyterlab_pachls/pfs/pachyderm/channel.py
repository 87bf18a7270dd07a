"""The connection to pachd: where it is (an address, or ``pachctl``'s config), the gRPC channel,
readiness (a call waits at most ``connect_timeout`` for the cluster, never hangs), the auth metadata
and deadline on every call, and every failed call turned into a typed error.

Deadlines (``rpc_timeout`` seconds), so that a cluster that accepts connections and never answers
cannot hold a thread:

- unary calls and listings (``ListRepo``, ``ListBranch``, ``ListCommit``, ``ListFile``, ``DiffFile``):
  one deadline for the whole call. A listing is paged or bounded by what one commit changed; a user
  waiting for a panel expects it to fail, not to hang. (``DiffFile`` of a huge commit is the one
  listing that could need longer than the default: it would then move to an idle deadline.)
- ``GetFile`` and ``ModifyFile`` carry file data of any size: a deadline on the whole call would cut a
  big transfer just for being big. They get an idle deadline instead: the call is cancelled when the
  cluster stays silent (no message received, no request taken) for ``rpc_timeout`` while we wait on
  it. Time the caller spends with a chunk in hand does not count, so a slow reader is never cut.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs
from pachyderm_sdk.api.pfs import betterproto_lib_google_protobuf as protobuf
from pachyderm_sdk.api.pfs.extension import ApiStub as PfsStub
from pachyderm_sdk.config import ConfigFile
from pachyderm_sdk.constants import GRPC_CHANNEL_OPTIONS

from ..address import DEFAULT_PROJECT
from ..errors import InvalidArgument, PfsError, Unavailable
from .errors import from_rpc_error

#: Default deadline of a call (see the module docstring): whole for calls and listings, idle for data.
#: As long as a call had before streams got deadlines: finishing a big commit (InspectCommit waiting
#: for FINISHED) and the diff a landing replays grow with the commit, and must not be cut by default.
RPC_TIMEOUT = 120.0
#: Calls whose size has no bound: an idle deadline (``IdleWatch``) instead of one for the whole call.
DATA_METHODS = frozenset({"/pfs_v2.API/GetFile", "/pfs_v2.API/ModifyFile"})
#: While the cluster is known to be down, a call waits this long for it (not connect_timeout each).
DOWN_RECHECK = 1.0
#: Reconnection attempts are at most this far apart, so a cluster that comes back is used within seconds.
CHANNEL_OPTIONS = [*GRPC_CHANNEL_OPTIONS, ("grpc.initial_reconnect_backoff_ms", 250),
                   ("grpc.min_reconnect_backoff_ms", 250), ("grpc.max_reconnect_backoff_ms", 2000)]


class CallOptions(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """The auth metadata on every call and a deadline on every call but ``DATA_METHODS`` (those are
    watched by ``IdleWatch``), so a silent cluster cannot hang a caller.

    ``pachyderm_sdk``'s own interceptor turns some failures into ``ConnectionError`` / ``TypeError``;
    this one leaves every failure a ``grpc.RpcError``, which ``Channel`` maps to typed errors.
    """

    def __init__(self, metadata, timeout: float) -> None:
        self.metadata = list(metadata)
        self.timeout = timeout

    def _details(self, call_details):
        call_details = call_details._replace(metadata=[*(call_details.metadata or ()), *self.metadata])
        if call_details.timeout is None and call_details.method not in DATA_METHODS:
            call_details = call_details._replace(timeout=self.timeout)
        return call_details

    def intercept_unary_unary(self, continuation, call_details, request):
        return continuation(self._details(call_details), request)

    def intercept_unary_stream(self, continuation, call_details, request):
        return continuation(self._details(call_details), request)

    def intercept_stream_unary(self, continuation, call_details, request_iterator):
        return continuation(self._details(call_details), request_iterator)

    def intercept_stream_stream(self, continuation, call_details, request_iterator):
        return continuation(self._details(call_details), request_iterator)


class IdleWatch:
    """Cancels a call (a ``grpc.Future``) once it has waited on the cluster for ``idle`` seconds without
    progress; ``waiting()`` / ``progress()`` mark the waits. One thread per watched call, from ``start``."""

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.fired = False
        self._since: float | None = None  # monotonic time the call began waiting on the cluster
        self._done = threading.Event()

    def start(self, call: grpc.Future) -> None:
        threading.Thread(target=self._watch, args=(call,), name="pachls-idle-watch", daemon=True).start()

    def waiting(self) -> None:
        self._since = time.monotonic()

    def progress(self) -> None:
        self._since = None

    def stop(self) -> None:
        self._done.set()

    def _watch(self, call: grpc.Future) -> None:
        while True:
            since = self._since
            left = self.idle if since is None else since + self.idle - time.monotonic()
            if left <= 0:
                self.fired = True
                call.cancel()
                return
            if self._done.wait(left):
                return


def cluster_client(pachd_address: str | None, auth_token: str | None,
                   config_path: str | os.PathLike | None) -> tuple[Client, str]:
    """The ``pachyderm_sdk`` client and the pachd address for an explicit address, else for the active
    context of ``config_path``, ``$PACH_CONFIG`` or ``~/.pachyderm/config.json`` (as ``pachctl`` reads it)."""
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
    return client, pachd_address


class Channel:
    """The PFS API of one cluster. No call is made at construction; ``rpc`` and ``stream`` first wait
    for the cluster (at most ``connect_timeout``) and raise ``Unavailable`` otherwise."""

    def __init__(self, pachd_address: str | None = None, auth_token: str | None = None,
                 config_path: str | os.PathLike | None = None, *, connect_timeout: float = 5.0,
                 rpc_timeout: float = RPC_TIMEOUT) -> None:
        for name, value in (("connect_timeout", connect_timeout), ("rpc_timeout", rpc_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgument(f"{name} must be a positive number of seconds, not {value!r}", **{name: value})
        client, address = cluster_client(pachd_address, auth_token, config_path)
        self.address = address if "://" in address else f"grpc://{address}"
        self.connect_timeout = connect_timeout
        self.rpc_timeout = rpc_timeout
        if client.root_certs is not None:
            raw = grpc.secure_channel(client.address, grpc.ssl_channel_credentials(client.root_certs),
                                      options=CHANNEL_OPTIONS)
        else:
            raw = grpc.insecure_channel(client.address, options=CHANNEL_OPTIONS)
        self._raw = raw
        self._state = None
        self._down_at: float | None = None  # when a call last found the cluster unreachable
        self._closed = False
        raw.subscribe(self._on_state, try_to_connect=False)
        channel = grpc.intercept_channel(raw, CallOptions(client._build_metadata(), rpc_timeout))
        self.pfs = PfsStub(channel, get_transaction_id=lambda: None)
        # The data calls as gRPC's own callables: the stub's methods hide the call that IdleWatch cancels.
        self._get_file = channel.unary_stream("/pfs_v2.API/GetFile",
                                              request_serializer=pfs.GetFileRequest.SerializeToString,
                                              response_deserializer=protobuf.BytesValue.FromString)
        self._inspect_project = channel.unary_unary("/pfs_v2.API/InspectProject",
                                                    request_serializer=pfs.InspectProjectRequest.SerializeToString,
                                                    response_deserializer=pfs.ProjectInfo.FromString)
        self._modify_file = channel.stream_unary("/pfs_v2.API/ModifyFile",
                                                 request_serializer=pfs.ModifyFileRequest.SerializeToString,
                                                 response_deserializer=protobuf.Empty.FromString)

    def _on_state(self, state) -> None:
        self._state = state

    def unreachable(self, waited: float, reason: str = "") -> Unavailable:
        self._down_at = time.monotonic()
        why = f" ({reason})" if reason else ""
        return Unavailable(
            f"the Pachyderm API at {self.address} does not answer{why}; waited {waited:g} s. Check that pachd "
            "(or `jupyter pachls serve`) runs there and is reachable, or switch the backend in Settings. "
            "Nothing was changed by the failed call; the connection is retried on the next request.",
            address=self.address)

    def ready(self) -> None:
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
            raise self.unreachable(timeout) from None
        self._down_at = None

    def error(self, exc: grpc.RpcError, what: str, watch: IdleWatch | None = None,
              deadline: float | None = None) -> PfsError:
        """The typed error of a failed call; a transport failure or a deadline says where the cluster was
        expected (``watch``: the call's idle deadline, when it has one; ``deadline``: the call's own,
        when not ``rpc_timeout``)."""
        deadline = self.rpc_timeout if deadline is None else deadline
        if watch is not None and watch.fired:
            return self.unreachable(deadline, f"{what} got nothing for {deadline:g} s")
        error = from_rpc_error(exc, what)
        if isinstance(error, Unavailable) and "address" not in error.details:
            code = exc.code() if hasattr(exc, "code") else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return self.unreachable(deadline, f"{what} got no complete answer within {deadline:g} s")
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                return self.unreachable(0, f"{what} failed: {exc.details() if hasattr(exc, 'details') else exc}")
        return error

    def rpc(self, what: str, fn, **kwargs):
        """A unary call (``fn``, a method of ``self.pfs``) once the cluster is ready; ``what`` names it."""
        self.ready()
        try:
            return fn(**kwargs)
        except grpc.RpcError as exc:
            raise self.error(exc, what) from None

    def ping(self) -> None:
        """Inspect the default project within ``connect_timeout`` (a typed error otherwise): the health
        probe. pachd answers it from its metadata store without reading any repo, so a poll costs the
        same however big the cluster; it needs the token when auth is on (a wrong one shows); and a
        cluster that never answers is reported within seconds, not after ``rpc_timeout``."""
        self.ready()
        try:
            self._inspect_project(pfs.InspectProjectRequest(project=pfs.Project(name=DEFAULT_PROJECT)),
                                  timeout=self.connect_timeout)
        except grpc.RpcError as exc:
            raise self.error(exc, "InspectProject", deadline=self.connect_timeout) from None

    def stream(self, what: str, fn, **kwargs) -> Iterator:
        """The replies of a server-streaming listing, as ``rpc`` (one deadline for the whole stream)."""
        self.ready()
        try:
            yield from fn(**kwargs)
        except grpc.RpcError as exc:
            raise self.error(exc, what) from None

    def get_file(self, request: pfs.GetFileRequest) -> Iterator[bytes]:
        """The chunks of ``GetFile``, under an idle deadline (a big file is never cut for its size).
        Closing the iterator early cancels the call."""
        self.ready()
        call = self._get_file(request)
        watch = IdleWatch(self.rpc_timeout)
        watch.start(call)
        try:
            while True:
                watch.waiting()
                try:
                    message = next(call)
                except StopIteration:
                    return
                watch.progress()  # the caller's time with the chunk does not count as the cluster's
                yield message.value
        except grpc.RpcError as exc:
            raise self.error(exc, "GetFile", watch) from None
        finally:
            watch.stop()
            call.cancel()  # no-op once the call ended; frees the stream when the reader stopped early

    def modify_file(self, requests: Iterable[pfs.ModifyFileRequest]) -> None:
        """One ``ModifyFile`` stream, under an idle deadline: the cluster must take each request, then
        answer, within ``rpc_timeout`` of the last one (an upload is never cut for its size)."""
        self.ready()
        watch = IdleWatch(self.rpc_timeout)

        def taken():
            for request in requests:  # making a request is the caller's time, not the cluster's
                watch.waiting()
                yield request
                watch.progress()  # gRPC asks for the next one once the cluster took this one
            watch.waiting()  # all sent: the answer is due

        call = self._modify_file.future(taken())
        watch.start(call)
        try:
            call.result()
        except grpc.FutureCancelledError:
            raise self.unreachable(self.rpc_timeout, f"ModifyFile got nothing for {self.rpc_timeout:g} s") from None
        except grpc.RpcError as exc:
            raise self.error(exc, "ModifyFile", watch) from None
        finally:
            watch.stop()

    def close(self) -> None:
        self._closed = True
        try:
            self._raw.unsubscribe(self._on_state)
        except Exception:
            pass
        self._raw.close()
