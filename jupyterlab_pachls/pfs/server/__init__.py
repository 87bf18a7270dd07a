"""A Pachyderm-API gRPC server (``pfs_v2``, ``transaction_v2``, ``metadata``, and the auth /
admin / version calls clients make first) over the embedded store.

``make_server(backend)`` returns a started ``grpc.Server`` that ``pachyderm_sdk.Client``
(and ``PachydermBackend``) can talk to as to pachd 2.12; ``serve`` runs one until interrupted
(``jupyter pachls serve --port 30650 --store DIR``). ``docs/pachyderm-compat.md`` lists every
method and each known difference from pachd.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures

import grpc

from ..backend import Backend
from .identity import IdentityService
from .metadata_api import MetadataService
from .service import PfsService
from .transactions import TransactionService

#: Largest message accepted: the SDK sends file data in 19 MiB messages.
MAX_MESSAGE = 64 * 1024 * 1024


def services(backend: Backend) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
    """``{"pfs_v2.API": {"Method": handler}, ...}``: every service and method served over ``backend``."""
    pfs_service = PfsService(backend)
    transactions = TransactionService(pfs_service)
    pfs_service.transactions = transactions
    served = {"pfs_v2.API": pfs_service.handlers()}
    served.update(transactions.services())
    served.update(MetadataService(pfs_service).services())
    served.update(IdentityService(backend).services())
    return served


def generic_handlers(backend: Backend) -> list[grpc.GenericRpcHandler]:
    return [grpc.method_handlers_generic_handler(name, methods) for name, methods in services(backend).items()]


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
    server.add_generic_rpc_handlers(generic_handlers(backend))
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, port


__all__ = ["MAX_MESSAGE", "PfsService", "make_server", "services"]
