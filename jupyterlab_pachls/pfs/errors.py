"""Typed errors shared by every backend.

Each error carries a stable ``code`` (used by the REST layer and the gRPC
server to pick a status), a human message and structured ``details``.
"""

from __future__ import annotations

from typing import Any


class PfsError(Exception):
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        return {"error": self.code, "message": self.message, "details": self.details}


class NotFound(PfsError):
    code = "not_found"


class AlreadyExists(PfsError):
    code = "already_exists"


class InvalidName(PfsError):
    code = "invalid_name"


class InvalidPath(PfsError):
    code = "invalid_path"


class InvalidArgument(PfsError):
    code = "invalid_argument"


class ParseError(InvalidArgument):
    """Address text that does not follow Pachyderm's syntax; says where."""

    code = "parse_error"


class Conflict(PfsError):
    """A compare-and-set lost, or a commit is not in the state the call needs."""

    code = "conflict"


class Unavailable(PfsError):
    code = "unavailable"
