"""The connection to pachd: where it is (an address, or ``pachctl``'s config), the gRPC channel,
readiness (a call waits at most ``connect_timeout`` for the cluster, never hangs), the auth metadata
and deadline on every call, and every failed call turned into a typed error."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api.pfs.extension import ApiStub as PfsStub
from pachyderm_sdk.config import ConfigFile
from pachyderm_sdk.constants import GRPC_CHANNEL_OPTIONS

from ..errors import InvalidArgument, PfsError, Unavailable
from .errors import from_rpc_error

UNARY_TIMEOUT = 120.0
#: While the cluster is known to be down, a call waits this long for it (not connect_timeout each).
DOWN_RECHECK = 1.0
#: Reconnection attempts are at most this far apart, so a cluster that comes back is used within seconds.
CHANNEL_OPTIONS = [*GRPC_CHANNEL_OPTIONS, ("grpc.initial_reconnect_backoff_ms", 250),
                   ("grpc.min_reconnect_backoff_ms", 250), ("grpc.max_reconnect_backoff_ms", 2000)]


class CallOptions(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """The auth metadata on every call and a deadline on unary ones (a silent cluster cannot hang a caller).

    ``pachyderm_sdk``'s own interceptor turns some failures into ``ConnectionError`` / ``TypeError``;
    this one leaves every failure a ``grpc.RpcError``, which ``Channel`` maps to typed errors.
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
                 config_path: str | os.PathLike | None = None, *, connect_timeout: float = 5.0) -> None:
        client, address = cluster_client(pachd_address, auth_token, config_path)
        self.address = address if "://" in address else f"grpc://{address}"
        self.connect_timeout = connect_timeout
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
        channel = grpc.intercept_channel(raw, CallOptions(client._build_metadata(), UNARY_TIMEOUT))
        self.pfs = PfsStub(channel, get_transaction_id=lambda: None)

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

    def error(self, exc: grpc.RpcError, what: str) -> PfsError:
        """The typed error of a failed call; a transport failure says where the cluster was expected."""
        error = from_rpc_error(exc, what)
        if isinstance(error, Unavailable) and "address" not in error.details:
            code = exc.code() if hasattr(exc, "code") else None
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

    def stream(self, what: str, fn, **kwargs) -> Iterator:
        """The replies of a server-streaming call, as ``rpc``."""
        self.ready()
        try:
            yield from fn(**kwargs)
        except grpc.RpcError as exc:
            raise self.error(exc, what) from None

    def close(self) -> None:
        self._closed = True
        try:
            self._raw.unsubscribe(self._on_state)
        except Exception:
            pass
        self._raw.close()
