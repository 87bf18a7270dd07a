"""A Pachyderm-API (``pfs_v2.API``) gRPC server over any ``Backend``.

``make_server(backend)`` returns a started ``grpc.Server`` that ``pachyderm_sdk.Client``
(and ``PachydermBackend``) can talk to; ``serve`` runs one until interrupted
(``jupyter pachls serve --port 30650 --store DIR``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures

import grpc

from ..backend import Backend
from .service import PfsService

#: Largest message accepted: the SDK sends file data in 19 MiB messages.
MAX_MESSAGE = 64 * 1024 * 1024


def make_server(backend: Backend, address: str = "127.0.0.1:0", *, max_workers: int = 32,
                interceptors: Sequence[grpc.ServerInterceptor] = ()) -> tuple[grpc.Server, int]:
    """Start serving ``backend`` on ``address`` (``host:port``; port 0 picks one); return (server, port)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pachls-grpc"),
        interceptors=tuple(interceptors),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers(PfsService(backend).generic_handlers())
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, port


__all__ = ["MAX_MESSAGE", "PfsService", "make_server"]
