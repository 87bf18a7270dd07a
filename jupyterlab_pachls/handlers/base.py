"""The handler base of the REST API: shared state, JSON in and out, the one error -> HTTP path.

Errors are JSON::

    {"error": "<code>", "message": "<human text>", "details": {...}}

with the status the typed error's class carries (``http_status``, see ``pfs/errors.py``).
JSON bodies are refused above :data:`MAX_JSON_BODY` (413).

Blocking work never runs on the event loop: a handler hands it to one of two thread pools (both
owned by ``app.PachlsState``), and which one is decided at each call site, by this rule:

- ``call_long`` for operations that may take long by design: they write many files, land commits
  (retries included), or wait on Label Studio or a cluster for more than one quick answer. Mount
  and label commits, moving a branch head and deleting a repo (on a cluster both land a commit in
  the ``pachls-meta`` repo), mount, unmount, refresh and discard of a mount, creating, deleting and
  importing into labeling sessions, resync (and its preview, which reads every task), logging in
  to Label Studio (it may make the account), opening and probing a backend at a switch.
- ``call`` for short calls: one quick read or a small write, what the panel polls. Repos, branches,
  commits, files and diffs, health, the mounts list and a mount's status and changes, pending
  labels, session status, identity, blame, diff and rows of labels, Label Studio's status and log.
  Starting Label Studio is short: it returns at once, and readiness is waited for on the event
  loop. A branch wait (long poll) is short too: it waits on the event loop and each poll is one read.

The long pool has ``PachlsConfig.long_operation_threads`` threads and a bounded queue
(``long_operation_queue``): a commit pressed while the threads are busy waits its turn, since
someone who pressed Commit expects it to land, not to be asked to press again; beyond the queue
the server answers 503 ``unavailable`` (reason ``busy``) at once rather than pile up work nobody
may still wait for. That 503 carries ``Retry-After`` (:data:`BUSY_RETRY_AFTER` seconds). Short calls
never wait for a thread behind long ones (a short call may still wait for a lock a long operation
holds: a mount's pending changes while that mount commits).
"""

from __future__ import annotations

import functools
import json
from http import HTTPStatus
from typing import Any, Awaitable, Callable

import tornado.web
from jupyter_server.base.handlers import APIHandler

from ..identity import check_saved_identity, resolve_identity, user_key
from ..pfs.errors import InvalidArgument, PfsError, Unavailable
from .args import absolute_path_arg

MAX_JSON_BODY = 1 << 20  # 1 MiB
#: Seconds a client is told to wait (``Retry-After``) when the long pool is full: a commit on a
#: cluster takes seconds, so asking again sooner mostly meets the same full queue.
BUSY_RETRY_AFTER = 5


def store_unavailable(error: str | None) -> Unavailable:
    """The 503 of a route that needs the store while none is open (``error``: why, when known)."""
    reason = error or "the store was closed"
    return Unavailable(f"The versioned store is not available ({reason}).", reason=reason)


class ApiError(tornado.web.HTTPError):
    """An HTTP error that carries the JSON body to send."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(status, log_message=None, reason=None)
        self.code = code
        self.message = message
        self.details = details or {}

    @classmethod
    def from_pfs(cls, exc: PfsError) -> "ApiError":
        return cls(type(exc).http_status, exc.code, exc.message, _jsonable_details(exc.details))


def _jsonable_details(details: dict) -> dict:
    try:
        json.dumps(details)
        return dict(details)
    except (TypeError, ValueError):
        return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)) for k, v in details.items()}


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
    """The ``error`` of a plain tornado HTTPError (no typed error behind it): its status phrase."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


class PachlsHandler(APIHandler):
    """Base class: access to the shared state, JSON in and out, JSON errors."""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if len(self.request.body or b"") > MAX_JSON_BODY:
            raise ApiError(
                413, "payload_too_large",
                f"Request body is {len(self.request.body)} bytes; the limit is {MAX_JSON_BODY}.",
                {"limit": MAX_JSON_BODY, "size": len(self.request.body)},
            )

    @property
    def state(self):
        """The server's ``app.PachlsState``."""
        return self.settings["pachls"]

    @property
    def backend(self):
        state = self.state
        if state.backend is None:
            raise store_unavailable(state.error)
        return state.backend

    @property
    def mounts(self):
        state = self.state
        if state.mounts is None:
            self.backend  # no backend: say that first
            reason = state.mounts_error or "the mount manager is not running"
            raise Unavailable(f"Mounts are not available ({reason}).", reason=reason)
        return state.mounts

    @property
    def identity(self):
        """Who this request is (see ``identity.py``): Jupyter's real user, a saved or configured one, git's."""
        config = self.state.config
        return resolve_identity(self.identity_provider, self.current_user, self.state.identities,
                                configured_name=config.user_name, configured_email=config.user_email,
                                email_domain=config.user_email_domain)

    @property
    def identity_key(self) -> str:
        """The Jupyter user this request is: the provider's username, or "" (the server's one person)."""
        return user_key(self.identity_provider, self.current_user)

    def check_email_is_own(self, key: str, name: str, email: str) -> None:
        """Refuse (EmailTaken, or InvalidArgument for a provider's name) an identity that is not this
        user's to have: another Jupyter user's saved email or Label Studio account, another
        provider-named user's default address."""
        owners = {self.state.identities.owner_of(email)}
        labeling = self.state.labeling
        if labeling is not None:
            owners.add(labeling.account_owner(email))
        other = next((owner for owner in owners if owner is not None and owner != key), None)
        check_saved_identity(self.identity_provider, self.current_user, name, email,
                             email_domain=self.state.config.user_email_domain, other_owner=other)

    @property
    def user_name(self) -> str:
        """The author of what this request writes into history, ``Name <email>``; 409 when none is known."""
        return self.identity.author

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a short blocking call (see the module's rule) in a thread of the short pool."""
        return await self.state.short_operations.run(fn, *args, **kwargs)

    async def call_long(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a long operation (see the module's rule) in a thread of the long pool: it waits for a
        thread in a bounded queue; when that is full, Unavailable (503, reason ``busy``)."""
        return await self.state.long_operations.run(fn, *args, **kwargs)

    async def send_result(self, fn: Callable[..., Any], *args: Any, status: int = 200, **kwargs: Any) -> None:
        """Run a short blocking call and answer what it returns (``.to_json()``)."""
        self.send_json((await self.call(fn, *args, **kwargs)).to_json(), status)

    async def send_long_result(self, fn: Callable[..., Any], *args: Any, status: int = 200, **kwargs: Any) -> None:
        """Run a long operation and answer what it returns (``.to_json()``)."""
        self.send_json((await self.call_long(fn, *args, **kwargs)).to_json(), status)

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

    # -- query parameters ------------------------------------------------------------------
    def query(self, name: str) -> str | None:
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise InvalidArgument(f"query parameter {name!r} is given {len(values)} times", parameter=name)
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument(f"query parameter {name!r} is not valid UTF-8", parameter=name) from None

    def int_query(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.query(name)
        if raw is None:
            return default
        if not raw.isdigit() or not lo <= int(raw) <= hi:
            raise InvalidArgument(
                f"query parameter {name!r} must be an integer from {lo} to {hi}, not {raw[:40]!r}",
                parameter=name, minimum=lo, maximum=hi,
            )
        return int(raw)

    def bool_query(self, name: str) -> bool:
        raw = self.query(name)
        if raw not in (None, "true", "false", "1", "0"):
            raise InvalidArgument(f"{name!r} must be true or false", parameter=name)
        return raw in ("true", "1")

    def path_query(self, name: str = "path", *, required: bool = False, default: str = "/") -> str:
        """A repo-absolute path query parameter (see :func:`.args.absolute_path_arg`)."""
        raw = self.query(name)
        if raw is None:
            if required:
                raise InvalidArgument(f"query parameter {name!r} is required", parameter=name)
            return default
        return absolute_path_arg(raw, name)

    # -- answers -------------------------------------------------------------------------------
    def send_with_etag(self, etag: str, body: Callable[[], bytes]) -> None:
        """Answer a JSON body with its ETag, or 304 with no body (``body`` is not even made) when the
        request's ``If-None-Match`` names that ETag: what the panel polls mostly did not change. Matched as
        HTTP says (tornado's ``check_etag_header``): a list, ``*``, and weak ``W/"..."`` tags, which a proxy
        that compresses the body sends back. A handler using it turns tornado's own ETag (a hash of every
        body) off: ``compute_etag`` returns None."""
        self.set_header("ETag", etag)
        self.set_header("Cache-Control", "no-cache")
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(body())

    def send_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def send_empty(self) -> None:
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = {"error": exc.code, "message": exc.message, "details": exc.details}
            if status_code == 503 and exc.details.get("reason") == "busy":
                self.set_header("Retry-After", str(BUSY_RETRY_AFTER))
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
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))
