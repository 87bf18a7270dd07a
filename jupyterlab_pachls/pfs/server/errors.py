"""Typed ``PfsError`` <-> gRPC status, both ways.

The server aborts a call with the status pachd uses for the same situation
and, in trailing metadata ``pachls-error``, the error's ``code`` and
``details`` as JSON, so a ``PachydermBackend`` talking to this server gets back
exactly the typed error the served backend raised. Against a real pachd there
is no such metadata and the status code alone picks the type.
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


def status_of(error: PfsError) -> grpc.StatusCode:
    return grpc.StatusCode[type(error).grpc_status]


def _repo_text(key: str) -> str:
    project, _, name = str(key).rpartition("/")
    return f"{project or 'default'}/{name}"


def pachd_message(error: PfsError) -> str:
    """The message pachd gives for the same missing or existing repo, branch, commit or project
    (``src/server/pfs/pfs.go``); other errors keep their own."""
    d, text = error.details, error.message
    if isinstance(error, NotFound):
        if {"repo", "commit"} <= set(d) and text.startswith("commit "):
            return f"commit {_repo_text(d['repo'])}@{d['commit']} not found"
        if {"repo", "branch"} <= set(d) and text.startswith("branch ") and "has no commits" not in text:
            return f'branch "{d["branch"]}" not found in repo {_repo_text(d["repo"])}'
        if set(d) == {"repo"} and text.startswith("repo "):
            return f"repo {_repo_text(d['repo'])} not found"
        if set(d) == {"project"} and text.startswith("project "):
            return f'project "{d["project"]}" not found'
    if isinstance(error, AlreadyExists):
        if set(d) == {"repo"}:
            return f"repo {_repo_text(d['repo'])} already exists"
        if set(d) == {"project"}:
            return f"project {d['project']} already exists"
        if {"repo", "branch"} <= set(d):
            return f'branch "{d["branch"]}" already exists in repo {_repo_text(d["repo"])}'
    return text


def abort(context: grpc.ServicerContext, error: PfsError) -> None:
    """Abort the current call with the status for ``error`` (raises, as ``context.abort`` does)."""
    try:
        details = json.dumps({"code": error.code, "details": error.details}, default=str)
    except (TypeError, ValueError):
        details = json.dumps({"code": error.code, "details": {}})
    context.set_trailing_metadata(((GRPC_DETAILS_KEY, details),))
    context.abort(status_of(error), pachd_message(error))


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
        elif "has not been finished" in lowered or "already been finished" in lowered or "finished" in lowered:
            cls = Conflict
        else:
            return PfsError(message, status=code.name if code else "UNKNOWN")
    return cls(message, status=code.name)
