"""A Pachyderm-API server that tests can stop at a chosen call and start again on the same port.

``Cluster`` serves an embedded store with the package's Pachyderm-API gRPC server; ``StopAt`` stops
that whole server at the n-th call of one method, as a process dying there would; ``eventually``
retries a call until the client's channel has reconnected.
"""

from __future__ import annotations

import threading
import time

import grpc

from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.errors import Unavailable
from jupyterlab_pachls.pfs.server import make_server


class StopAt(grpc.ServerInterceptor):
    """Stop the whole server at the ``n``-th call of ``method`` (``/pfs_v2.API/<Name>``), before or after
    the served backend handled it, as a process that dies there would (the client sees its call cut)."""

    def __init__(self, method: str | None = None, n: int = 1, *, after: bool = False) -> None:
        self.method, self.n, self.after = method, n, after
        self.seen = 0
        self.server: grpc.Server | None = None
        self.fired = threading.Event()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if self.method is None or not details.method.endswith("/" + self.method) or handler is None:
            return handler
        self.seen += 1
        if self.seen != self.n:
            return handler
        if handler.unary_unary is not None:
            inner, kind = handler.unary_unary, "unary_unary"
        elif handler.stream_unary is not None:
            inner, kind = handler.stream_unary, "stream_unary"
        else:
            return handler

        def dying(request, context):
            if self.after:
                inner(request, context)
            self.fired.set()
            self.server.stop(grace=None)
            while context.is_active():
                time.sleep(0.01)
            context.abort(grpc.StatusCode.CANCELLED, "server stopped")

        make = getattr(grpc, f"{kind}_rpc_method_handler")
        return make(dying, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


class Cluster:
    """The served store and a server on a fixed port that can be stopped and started again."""

    def __init__(self, path) -> None:
        self.served = LocalBackend(path)
        self.server, self.port = make_server(self.served, "127.0.0.1:0")
        self.address = f"grpc://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace=None).wait()

    def start(self, *interceptors: StopAt) -> None:
        self.server, _ = make_server(self.served, f"127.0.0.1:{self.port}", interceptors=interceptors)
        for i in interceptors:
            i.server = self.server

    def close(self) -> None:
        self.stop()
        self.served.close()


def eventually(fn, timeout: float = 30.0):
    """Call ``fn`` until it stops raising Unavailable (the channel reconnects by itself)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
