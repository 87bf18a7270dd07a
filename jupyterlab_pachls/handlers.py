"""REST API of jupyterlab-pachls: one route table, thin authenticated handlers.

Every route lives under ``/pachls/api/``. Handlers only parse requests, call
the backend (in a worker thread: backends are blocking) and shape JSON.
Errors are JSON too::

    {"error": "<code>", "message": "<human text>", "details": {...}}

with the status picked from the error class (see :data:`STATUS_BY_CODE`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from http import HTTPStatus
from typing import Any, Awaitable, Callable

import tornado.web
from jupyter_server.base.handlers import APIHandler

from .pfs import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidName,
    InvalidPath,
    NotFound,
    ParseError,
    PfsError,
    Unavailable,
)

API_PREFIX = "/pachls/api"

#: HTTP status for each typed error; subclasses are matched through the MRO.
STATUS_BY_CLASS: list[tuple[type[PfsError], int]] = [
    (NotFound, 404),
    (AlreadyExists, 409),
    (Conflict, 409),
    (ParseError, 400),
    (InvalidName, 400),
    (InvalidPath, 400),
    (InvalidArgument, 400),
    (Unavailable, 503),
]


def status_for(exc: PfsError) -> int:
    for cls, status in STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 500


class ApiError(tornado.web.HTTPError):
    """An HTTP error that carries the JSON body to send."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(status, log_message=None, reason=None)
        self.code = code
        self.message = message
        self.details = details or {}

    @classmethod
    def from_pfs(cls, exc: PfsError) -> "ApiError":
        return cls(status_for(exc), exc.code, exc.message, dict(exc.details))


def json_errors(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn typed backend errors raised inside a handler method into :class:`ApiError`."""

    @functools.wraps(method)
    async def wrapper(self: "PachlsHandler", *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except PfsError as exc:
            raise ApiError.from_pfs(exc) from exc

    return wrapper


def _error_code_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


class PachlsHandler(APIHandler):
    """Base class: access to the shared state, JSON in and out, JSON errors."""

    @property
    def state(self):
        return self.settings["pachls"]

    @property
    def backend(self):
        state = self.state
        if state.backend is None:
            reason = state.error or "the store was closed"
            raise Unavailable(f"The versioned store is not available ({reason}).", reason=reason)
        return state.backend

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking backend call in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def json_body(self) -> dict:
        raw = self.request.body
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"Request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise InvalidArgument("Request body must be a JSON object.")
        return body

    def send_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = {"error": exc.code, "message": exc.message, "details": exc.details}
        elif isinstance(exc, tornado.web.HTTPError):
            body = {
                "error": _error_code_for_status(status_code),
                "message": exc.log_message or exc.reason or self._reason,
                "details": {},
            }
        else:
            # Unexpected failure: the traceback goes to the server log only.
            body = {
                "error": "internal",
                "message": "Internal server error; see the Jupyter server log.",
                "details": {},
            }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class HealthHandler(PachlsHandler):
    """``GET /pachls/api/health``: backend kind and address, store reachable, FUSE usable."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        state = self.state
        backend = state.backend
        body: dict[str, Any] = {
            "backend": {
                "kind": getattr(backend, "kind", None),
                "address": getattr(backend, "address", None),
                "connected": False,
                "error": state.error,
            },
            "store_dir": state.config.store_dir,
            "fuse": {"available": fuse_available()},
        }
        if backend is not None:
            try:
                await self.call(backend.list_repos)
            except PfsError as exc:
                body["backend"]["error"] = exc.message
            else:
                body["backend"]["connected"] = True
        self.send_json(body)


class ReposHandler(PachlsHandler):
    """``GET /pachls/api/repos``: every repo with its branches; ``POST``: create a repo."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        backend = self.backend

        def load() -> tuple[list, list]:
            return backend.list_repos(), backend.list_branches()

        repos, branches = await self.call(load)
        by_repo: dict[str, list[dict]] = {}
        for branch in branches:
            by_repo.setdefault(branch.repo, []).append(branch.to_json())
        out = []
        for repo in repos:
            item = repo.to_json()
            item["branches"] = sorted(by_repo.get(repo.key, []), key=lambda b: b["name"])
            out.append(item)
        self.send_json(
            {"backend": {"kind": backend.kind, "address": backend.address}, "repos": out}
        )

    @tornado.web.authenticated
    @json_errors
    async def post(self) -> None:
        body = self.json_body()
        name = body.get("name")
        description = body.get("description", "")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("Field 'name' (a non-empty string) is required.", field="name")
        if not isinstance(description, str):
            raise InvalidArgument("Field 'description' must be a string.", field="description")
        repo = await self.call(self.backend.create_repo, name, description=description)
        self.send_json(repo.to_json(), status=201)


class NotFoundHandler(PachlsHandler):
    """Any other path under ``/pachls/api/``: a JSON 404 instead of an HTML page."""

    def _not_found(self, path: str) -> None:
        raise NotFound(f"No such API route: /pachls/api/{path}", path=path)

    @tornado.web.authenticated
    @json_errors
    async def get(self, path: str) -> None:
        self._not_found(path)

    @tornado.web.authenticated
    @json_errors
    async def post(self, path: str) -> None:
        self._not_found(path)

    @tornado.web.authenticated
    @json_errors
    async def put(self, path: str) -> None:
        self._not_found(path)

    @tornado.web.authenticated
    @json_errors
    async def patch(self, path: str) -> None:
        self._not_found(path)

    @tornado.web.authenticated
    @json_errors
    async def delete(self, path: str) -> None:
        self._not_found(path)


def fuse_available() -> bool:
    return os.access("/dev/fuse", os.R_OK | os.W_OK)


def route_table() -> list[tuple[str, type[PachlsHandler]]]:
    """The one route table (paths relative to the server's base URL)."""
    return [
        (rf"{API_PREFIX}/health", HealthHandler),
        (rf"{API_PREFIX}/repos", ReposHandler),
        # Must stay last: tornado takes the first pattern that matches.
        (rf"{API_PREFIX}/(.*)", NotFoundHandler),
    ]
