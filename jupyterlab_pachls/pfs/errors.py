"""Typed errors shared by every backend, and THE registry of how each travels.

Each error carries a stable ``code`` (its name on the wire), a human message and
structured ``details``. Its class says how it travels: ``http_status`` for the REST
layer, ``grpc_status`` (the name of a ``grpc.StatusCode`` member, so this module needs
no grpc) for the gRPC server. The readers of both wires rebuild the typed error with
:func:`error_from_code`, or :func:`error_class_for_grpc_status` when a real pachd sent
only a status.
"""

from __future__ import annotations

from typing import Any

#: gRPC trailing metadata key carrying an error's ``code`` and ``details`` as JSON: the server
#: sends it, the client rebuilds the typed error from it (a real pachd sends none).
GRPC_DETAILS_KEY = "pachls-error"


class PfsError(Exception):
    code = "error"
    http_status = 500
    grpc_status = "UNKNOWN"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        return {"error": self.code, "message": self.message, "details": self.details}


class NotFound(PfsError):
    code = "not_found"
    http_status = 404
    grpc_status = "NOT_FOUND"


class AlreadyExists(PfsError):
    code = "already_exists"
    http_status = 409
    grpc_status = "ALREADY_EXISTS"


class InvalidName(PfsError):
    code = "invalid_name"
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"


class InvalidPath(PfsError):
    code = "invalid_path"
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"


class InvalidArgument(PfsError):
    code = "invalid_argument"
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"


class ParseError(InvalidArgument):
    """Address text that does not follow Pachyderm's syntax; says where."""

    code = "parse_error"


class Conflict(PfsError):
    """A compare-and-set lost, or a commit is not in the state the call needs."""

    code = "conflict"
    http_status = 409
    grpc_status = "FAILED_PRECONDITION"


class WouldOverwrite(Conflict):
    """Moving a read-write mount to another commit would replace local files its ignore rules keep out
    of every commit (never pending, so never committed): ``details["paths"]`` names them. Asked again
    with an explicit overwrite, the branch's version replaces them."""

    code = "would_overwrite"


class Cancelled(PfsError):
    """An operation stopped on request (an import cancelled): nothing of it was kept."""

    code = "cancelled"
    http_status = 409
    grpc_status = "CANCELLED"


class Unavailable(PfsError):
    code = "unavailable"
    http_status = 503
    grpc_status = "UNAVAILABLE"


#: The errors a wire can name by code. Subclasses defined above pfs (identity, labeling)
#: travel as their code over HTTP and are rebuilt as a plain PfsError carrying that code.
_BY_CODE: dict[str, type[PfsError]] = {
    cls.code: cls
    for cls in (NotFound, AlreadyExists, InvalidName, InvalidPath, ParseError, InvalidArgument, Conflict,
                WouldOverwrite, Cancelled, Unavailable)
}

#: The class for a status that came without an error code (a real pachd): the general class of
#: each status the classes send, plus pachd's other statuses for the same situations.
_BY_GRPC_STATUS: dict[str, type[PfsError]] = {
    **{cls.grpc_status: cls for cls in (NotFound, AlreadyExists, InvalidArgument, Conflict, Unavailable)},
    "OUT_OF_RANGE": InvalidArgument,
    "ABORTED": Conflict,
    "DEADLINE_EXCEEDED": Unavailable,
}


def error_class(code: object) -> type[PfsError] | None:
    """The class a wire code names, or None when this registry does not know the code."""
    return _BY_CODE.get(code) if isinstance(code, str) else None


def error_from_code(code: object, message: str, details: dict | None = None) -> PfsError:
    """The typed error for ``code``; an unknown code gives a PfsError that keeps it."""
    cls = error_class(code)
    error = (cls or PfsError)(message, **(details or {}))
    if cls is None and isinstance(code, str) and code:
        error.code = code  # type: ignore[misc]
    return error


def error_class_for_grpc_status(name: str) -> type[PfsError] | None:
    """The class a bare gRPC status (by ``grpc.StatusCode`` member name) stands for, if any."""
    return _BY_GRPC_STATUS.get(name)
