"""Typed ``PfsError`` -> gRPC status, for the server.

The server aborts a call with the status pachd uses for the same situation
and, in trailing metadata ``pachls-error``, the error's ``code`` and
``details`` as JSON, so a ``PachydermBackend`` talking to this server gets back
exactly the typed error the served backend raised (``pfs/pachyderm/errors.py``
reads it). Against a real pachd there is no such metadata and the status code
alone picks the type.
"""

from __future__ import annotations

import json

import grpc

from ..errors import GRPC_DETAILS_KEY, AlreadyExists, NotFound, PfsError
from ..wire import repo_text


def status_of(error: PfsError) -> grpc.StatusCode:
    return grpc.StatusCode[type(error).grpc_status]


def pachd_message(error: PfsError) -> str:
    """The message pachd gives for the same missing or existing repo, branch, commit or project
    (``src/server/pfs/pfs.go``); other errors keep their own."""
    d, text = error.details, error.message
    if isinstance(error, NotFound):
        if {"repo", "commit"} <= set(d) and text.startswith("commit "):
            return f"commit {repo_text(d['repo'])}@{d['commit']} not found"
        if {"repo", "branch"} <= set(d) and text.startswith("branch ") and "has no commits" not in text:
            return f'branch "{d["branch"]}" not found in repo {repo_text(d["repo"])}'
        if set(d) == {"repo"} and text.startswith("repo "):
            return f"repo {repo_text(d['repo'])} not found"
        if set(d) == {"project"} and text.startswith("project "):
            return f'project "{d["project"]}" not found'
    if isinstance(error, AlreadyExists):
        if set(d) == {"repo"}:
            return f"repo {repo_text(d['repo'])} already exists"
        if set(d) == {"project"}:
            return f"project {d['project']} already exists"
        if {"repo", "branch"} <= set(d):
            return f'branch "{d["branch"]}" already exists in repo {repo_text(d["repo"])}'
    return text


def abort(context: grpc.ServicerContext, error: PfsError) -> None:
    """Abort the current call with the status for ``error`` (raises, as ``context.abort`` does)."""
    try:
        details = json.dumps({"code": error.code, "details": error.details}, default=str)
    except (TypeError, ValueError):
        details = json.dumps({"code": error.code, "details": {}})
    context.set_trailing_metadata(((GRPC_DETAILS_KEY, details),))
    context.abort(status_of(error), pachd_message(error))

