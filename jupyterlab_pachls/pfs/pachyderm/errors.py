"""A failed gRPC call as the typed error of the registry (``pfs/errors.py``).

The Pachyderm-API server of this package sends the error's ``code`` and ``details`` in the trailing
metadata ``GRPC_DETAILS_KEY``, so the exact typed error the served backend raised comes back. A real
pachd sends a status only: the status, then pachd's message, picks the type.
"""

from __future__ import annotations

import json

import grpc

from ..errors import (
    GRPC_DETAILS_KEY,
    AlreadyExists,
    Conflict,
    NotFound,
    PfsError,
    Unavailable,
    error_class,
    error_class_for_grpc_status,
)


def from_rpc_error(error: grpc.RpcError, what: str = "") -> PfsError:
    """The typed error for a failed call (``what`` names the call, for messages of transport failures)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(error)
    for key, value in (error.trailing_metadata() or ()) if hasattr(error, "trailing_metadata") else ():
        if key == GRPC_DETAILS_KEY:
            try:
                data = json.loads(value)
                cls = error_class(data.get("code"))
                if cls is not None:
                    return cls(message, **(data.get("details") or {}))
            except (ValueError, TypeError, AttributeError):
                pass
    if code == grpc.StatusCode.UNIMPLEMENTED and "http2 header with status" in message:
        return Unavailable(f"the server at this address does not speak Pachyderm's gRPC API: {message}")
    # CANCELLED without our metadata: the server went away mid-call (a server stopping cancels its calls)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        where = f" during {what}" if what else ""
        return Unavailable(f"the Pachyderm cluster is unavailable{where}: {message}", status=code.name)
    cls = error_class_for_grpc_status(code.name) if code else None
    if cls is None:
        lowered = message.lower()
        if "not found" in lowered:
            cls = NotFound
        elif "already exists" in lowered:
            cls = AlreadyExists
        elif "finished" in lowered:  # "... has not been finished", "... has already been finished"
            cls = Conflict
        else:
            return PfsError(message, status=code.name if code else "UNKNOWN")
    return cls(message, status=code.name)
