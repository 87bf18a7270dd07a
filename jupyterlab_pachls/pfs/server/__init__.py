"""A Pachyderm-API gRPC server (``pfs_v2``, ``transaction_v2``, ``metadata``, and the auth /
admin / version calls clients make first) over the embedded store.

``make_server(backend)`` returns a started ``grpc.Server`` that ``pachyderm_sdk.Client``
(and ``PachydermBackend``) can talk to as to pachd 2.12; ``serve`` runs one until interrupted
(``jupyter pachls serve --port 30650 --store DIR``). ``docs/pachyderm-compat.md`` lists every
method and each known difference from pachd.

Without ``auth_token`` the server answers as a pachd with auth off: anyone who reaches the port can
read, change and delete everything (``serve`` therefore listens on loopback unless told otherwise).
With ``auth_token`` every call but the few pachd lets through without one must carry it in the
``authn-token`` metadata (``pachyderm_sdk.Client(..., auth_token=...)``), as on a pachd with auth on.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures

import grpc

from ..backend import Backend
from .calls import TokenCheck
from .identity import IdentityService
from .metadata_api import MetadataService
from .service import PfsService
from .transactions import TransactionService

#: Largest message accepted: the SDK sends file data in 19 MiB messages.
MAX_MESSAGE = 64 * 1024 * 1024


def services(backend: Backend, *, auth_on: bool = False) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
    """``{"pfs_v2.API": {"Method": handler}, ...}``: every service and method served over ``backend``
    (``auth_on``: the auth calls answer as on a pachd with auth on)."""
    pfs_service = PfsService(backend, auth_on=auth_on)
    transactions = TransactionService(pfs_service)
    pfs_service.transactions = transactions
    served = {"pfs_v2.API": pfs_service.handlers()}
    served.update(transactions.services())
    served.update(MetadataService(pfs_service).services())
    served.update(IdentityService(backend, auth_on=auth_on).services())
    return served


def generic_handlers(backend: Backend, *, auth_on: bool = False) -> list[grpc.GenericRpcHandler]:
    return [grpc.method_handlers_generic_handler(name, methods)
            for name, methods in services(backend, auth_on=auth_on).items()]


def make_server(backend: Backend, address: str = "127.0.0.1:0", *, max_workers: int = 32,
                interceptors: Sequence[grpc.ServerInterceptor] = (),
                auth_token: str | None = None) -> tuple[grpc.Server, int]:
    """Start serving ``backend`` on ``address`` (``host:port``; port 0 picks one); return (server, port).
    ``auth_token``: the token every call must carry (see the module's docstring); None: auth off."""
    if auth_token is not None and not auth_token:
        raise ValueError("auth_token is empty: give a token, or None for no authentication")
    checks = (TokenCheck(auth_token),) if auth_token else ()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pachls-grpc"),
        interceptors=checks + tuple(interceptors),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers(generic_handlers(backend, auth_on=bool(auth_token)))
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, port


__all__ = ["MAX_MESSAGE", "PfsService", "make_server", "services"]
