"""Routes about the server itself: health, the OpenAPI document, the backend in use, who the user is,
and the JSON 404 of every other path under the API prefix."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import tornado.web

from ..config import resolve_store
from ..identity import check_identity
from ..mount import fuse_status
from ..pfs.errors import InvalidArgument, NotFound, PfsError
from .args import check_fields, string_field
from .base import PachlsHandler, json_errors

OPENAPI_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "openapi.yaml")


async def reachability(handler: PachlsHandler, backend: Any, error: str | None) -> tuple[bool, str | None]:
    """(connected, error) of a backend: one cheap call (a short one) tells whether it answers."""
    if backend is None:
        return False, error
    try:
        await handler.call(backend.ping)
    except PfsError as exc:
        return False, exc.message
    return True, error


def health_json(state, backend: Any, connected: bool, error: str | None) -> dict:
    """The health report (schema ``Health``) of ``backend`` (the caller's, taken once; None: no store),
    with what is known of its reachability."""
    return {
        "backend": {
            "kind": getattr(backend, "kind", None),
            "address": getattr(backend, "address", None),
            "connected": connected,
            "error": error,
        },
        "store_dir": resolve_store(state.config),
        "fuse": dict(zip(("available", "reason"), fuse_status())),
    }


class HealthHandler(PachlsHandler):
    """``GET /pachls/api/health``: backend kind and address, store reachable, FUSE usable."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        state = self.state
        backend = state.backend  # taken once: a backend switch during the ping must not mix two
        connected, error = await reachability(self, backend, state.error)
        self.send_json(health_json(state, backend, connected, error))


@functools.lru_cache(maxsize=1)
def openapi_document() -> str:
    import yaml

    with open(OPENAPI_FILE, encoding="utf-8") as f:
        return json.dumps(yaml.safe_load(f))


class OpenApiHandler(PachlsHandler):
    """``GET /pachls/api/openapi.json``: the OpenAPI document of this API."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(openapi_document())


def parse_choice(body: dict) -> dict:
    """A backend choice from a ``PUT /pachls/api/backend`` body."""
    kind = body.get("kind")
    if kind == "local":
        check_fields(body, ("kind",))
        return {"kind": "local"}
    if kind == "pachyderm":
        check_fields(body, ("kind",), ("pachd_address", "auth_token"))
        choice: dict[str, Any] = {"kind": "pachyderm"}
        address = string_field(body, "pachd_address")
        if address is not None:
            address = address.strip()
            if not address or any(c.isspace() or ord(c) < 32 for c in address):
                raise InvalidArgument("pachd_address must be an address like grpc://host:30650",
                                      field="pachd_address")
            choice["pachd_address"] = address
        token = string_field(body, "auth_token")
        if token:
            choice["auth_token"] = token
        return choice
    raise InvalidArgument("Field 'kind' must be 'local' or 'pachyderm'.", field="kind")


class BackendHandler(PachlsHandler):
    """``GET /pachls/api/backend``: the backend in use; ``PUT``: switch backend explicitly."""

    async def describe(self) -> dict:
        state = self.state
        backend = state.backend
        choice = state.choice
        connected, error = await reachability(self, backend, state.error)
        return {
            "kind": getattr(backend, "kind", None) or choice.get("kind"),
            "address": getattr(backend, "address", None),
            "connected": connected,
            "error": error,
            "pachd_address": choice.get("pachd_address") if choice.get("kind") == "pachyderm" else None,
            "auth_token_set": bool(choice.get("auth_token")),
            "store_dir": resolve_store(state.config),
            "saved_in": state.config.backend_file,
        }

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        self.send_json(await self.describe())

    @tornado.web.authenticated
    @json_errors
    async def put(self) -> None:
        new = await self.state.switch_backend(parse_choice(self.json_body()))
        self.log.info("jupyterlab_pachls: switched to the %s backend at %s", new.kind, new.address)
        self.send_json(await self.describe())


class IdentityHandler(PachlsHandler):
    """``GET /pachls/api/identity``: who history is written as; ``PUT`` {name, email}: save it."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        await self.send_result(lambda: self.identity)

    @tornado.web.authenticated
    @json_errors
    async def put(self) -> None:
        body = self.json_body()
        check_fields(body, ("name", "email"), ())
        name, email = check_identity(body["name"], body["email"])
        key = self.identity_key
        await self.call(self.check_email_is_own, key, name, email)
        await self.call(self.state.identities.save, key, name, email)
        await self.send_result(lambda: self.identity)


class NotFoundHandler(PachlsHandler):
    """Any other path under ``/pachls/api/``: a JSON 404 instead of an HTML page."""

    @tornado.web.authenticated
    @json_errors
    async def not_found(self, path: str) -> None:
        raise NotFound(f"No such API route: /pachls/api/{path}", path=path)

    get = post = put = patch = delete = not_found
