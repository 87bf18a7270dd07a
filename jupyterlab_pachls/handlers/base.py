"""REST API of jupyterlab-pachls: one route table, thin authenticated handlers.

Every route lives under ``/pachls/api/`` and is described by the OpenAPI
document ``openapi.yaml`` beside this file (served at ``/pachls/api/openapi.json``).
Handlers only parse and check requests, call the backend or the mount manager
(in a worker thread: both are blocking) and shape JSON. Errors are JSON too::

    {"error": "<code>", "message": "<human text>", "details": {...}}

with the status picked from the error class (see :data:`STATUS_BY_CLASS`).

Input is checked before anything is called: names with ``validate_name`` /
``parse_repo``, refs with ``parse_ref``, paths with ``normalize_path``, query
integers against their bounds, JSON bodies against their fields and a size
limit (:data:`MAX_JSON_BODY`, else 413).
"""

from __future__ import annotations

import asyncio
import functools
import json
import mimetypes
import os
import urllib.parse
from http import HTTPStatus
from typing import Any, Awaitable, Callable

import tornado.web
from jupyter_server.base.handlers import APIHandler

from .listing import ReposListing, branch_json, repo_json
from .pfs import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidName,
    InvalidPath,
    NotFound,
    ParseError,
    PfsError,
    Provenance,
    Unavailable,
    is_commit_id,
    normalize_path,
    parse_address,
    parse_ref,
    parse_repo,
    validate_name,
)

API_PREFIX = "/pachls/api"
MAX_JSON_BODY = 1 << 20  # 1 MiB
OPENAPI_FILE = os.path.join(os.path.dirname(__file__), "openapi.yaml")

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
        return cls(status_for(exc), exc.code, exc.message, _jsonable_details(exc.details))


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
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


# -- input checks (raise typed errors -> 400) -----------------------------------------------
def repo_arg(raw: str) -> str:
    """A ``{repo}`` path parameter: ``repo`` or ``project/repo`` (slash encoded in the URL)."""
    if isinstance(raw, str) and (raw.startswith("/") or raw.count("/") > 1):
        raise InvalidName(f"repo name {raw!r} is invalid: expected repo or project/repo", kind="repo", name=raw)
    return str(parse_repo(raw))


def branch_arg(raw: str) -> str:
    return validate_name(raw, "branch")


def ref_arg(raw: object, what: str = "ref") -> str:
    """A branch name, a commit id, or ``branch^N``; returned unchanged once checked."""
    if not isinstance(raw, str) or not raw:
        raise InvalidArgument(f"{what} must be a branch name, a commit id or branch^N", field=what)
    parse_ref(raw)
    return raw


def mount_name_arg(raw: object) -> str:
    """A mount name, as the mount package accepts it (letters, digits, '_', '-', '.'; no '..')."""
    try:
        from .mount import validate_mount_name
    except ImportError:
        validate_mount_name = None
    if validate_mount_name is not None:
        return validate_mount_name(raw)
    if not isinstance(raw, str) or not raw:
        raise InvalidName("mount name must be a non-empty string", kind="mount", name=repr(raw))
    try:
        return validate_name(raw, "branch")
    except InvalidName as exc:
        raise InvalidName(exc.message.replace("branch name", "mount name"), kind="mount", name=raw) from None


def check_fields(body: dict, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise InvalidArgument(
            f"unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(required + optional)}",
            fields=unknown,
        )
    for name in required:
        if name not in body:
            raise InvalidArgument(f"Field {name!r} is required.", field=name)


def string_field(body: dict, name: str, *, required: bool = False, allow_empty: bool = True,
                 default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (not allow_empty and not value):
        kind = "a non-empty string" if not allow_empty else "a string"
        raise InvalidArgument(f"Field {name!r} ({kind}) is required." if required else
                              f"Field {name!r} must be {kind}.", field=name)
    return value


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
        return self.settings["pachls"]

    @property
    def backend(self):
        state = self.state
        if state.backend is None:
            reason = state.error or "the store was closed"
            raise Unavailable(f"The versioned store is not available ({reason}).", reason=reason)
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
        from .identity import resolve_identity

        config = self.state.config
        return resolve_identity(self.identity_provider, self.current_user, self.state.identities,
                                configured_name=config.user_name, configured_email=config.user_email,
                                email_domain=config.user_email_domain)

    @property
    def identity_key(self) -> str:
        """The Jupyter user this request is: the provider's username, or "" (the server's one person)."""
        from .identity import user_key

        return user_key(self.identity_provider, self.current_user)

    def check_email_is_own(self, key: str, name: str, email: str) -> None:
        """Refuse (EmailTaken, or InvalidArgument for a provider's name) an identity that is not this
        user's to have: another Jupyter user's saved email or Label Studio account, another
        provider-named user's default address."""
        from .identity import check_saved_identity

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

    def path_query(self, name: str = "path", *, required: bool = False, default: str = "/") -> str:
        """A repo-absolute path query parameter: ``cats/1.png`` or ``..\\x`` is refused, never
        silently taken as ``/cats/1.png``."""
        raw = self.query(name)
        if raw is None:
            if required:
                raise InvalidArgument(f"query parameter {name!r} is required", parameter=name)
            return default
        if not raw.startswith("/"):
            raise InvalidPath(f"{name} {raw[:80]!r} is relative; paths are repo-absolute (start with '/')",
                              path=raw[:80])
        return normalize_path(raw)

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


# -- server ----------------------------------------------------------------------------------
class IdentityHandler(PachlsHandler):
    """``GET /pachls/api/identity``: who history is written as; ``PUT`` {name, email}: save it."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        self.send_json((await self.call(lambda: self.identity)).to_json())

    @tornado.web.authenticated
    @json_errors
    async def put(self) -> None:
        from .identity import check_identity

        body = self.json_body()
        check_fields(body, ("name", "email"), ())
        name, email = check_identity(body["name"], body["email"])
        key = self.identity_key
        await self.call(self.check_email_is_own, key, name, email)
        await self.call(self.state.identities.save, key, name, email)
        self.send_json((await self.call(lambda: self.identity)).to_json())


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
            "fuse": dict(zip(("available", "reason"), fuse_status())),
        }
        if backend is not None:
            try:
                await self.call(backend.list_repos)
            except PfsError as exc:
                body["backend"]["error"] = exc.message
            else:
                body["backend"]["connected"] = True
        self.send_json(body)


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


class BackendHandler(PachlsHandler):
    """``GET /pachls/api/backend``: the backend in use; ``PUT``: switch backend explicitly."""

    async def describe(self) -> dict:
        state = self.state
        backend = state.backend
        choice = state.choice
        body = {
            "kind": getattr(backend, "kind", None) or choice.get("kind"),
            "address": getattr(backend, "address", None),
            "connected": False,
            "error": state.error,
            "pachd_address": choice.get("pachd_address") if choice.get("kind") == "pachyderm" else None,
            "auth_token_set": bool(choice.get("auth_token")),
            "store_dir": state.config.store_dir,
            "saved_in": state.config.backend_file,
        }
        if backend is not None:
            try:
                await self.call(backend.list_repos)
            except PfsError as exc:
                body["error"] = exc.message
            else:
                body["connected"] = True
        return body

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        self.send_json(await self.describe())

    @staticmethod
    def parse_choice(body: dict) -> dict:
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

    @tornado.web.authenticated
    @json_errors
    async def put(self) -> None:
        from .app import backend_spec, make_mount_manager, save_choice
        from .pfs import open_backend as open_spec

        choice = self.parse_choice(self.json_body())
        state = self.state
        async with state.switch_lock:
            if state.mounts is not None:
                existing = await self.call(state.mounts.list)
                if existing:
                    raise Conflict(
                        "Unmount every mount before switching the backend.",
                        mounts=[m.name for m in existing],
                    )
            spec = backend_spec(state.config, choice)
            try:
                new = await self.call(open_spec, spec)
            except PfsError:
                raise
            except Exception as exc:
                raise InvalidArgument(f"cannot open the {choice['kind']} backend: {exc}", kind=choice["kind"]) from exc
            try:
                await asyncio.wait_for(self.call(new.list_repos), state.config.connect_timeout)
            except BaseException as exc:
                await self.call(new.close)
                if isinstance(exc, PfsError):
                    raise
                if isinstance(exc, asyncio.TimeoutError):
                    raise Unavailable(
                        f"the {choice['kind']} backend did not answer within {state.config.connect_timeout:g} s",
                        address=choice.get("pachd_address"),
                    ) from None
                if isinstance(exc, Exception):
                    raise Unavailable(f"the {choice['kind']} backend does not answer: {exc}") from exc
                raise
            try:
                await self.call(save_choice, state.config.backend_file, choice)
            except OSError as exc:
                await self.call(new.close)
                raise Unavailable(f"cannot save the backend choice in {state.config.backend_file}: {exc}") from exc
            old_backend, old_mounts = state.backend, state.mounts
            state.mounts = None
            if old_mounts is not None:
                await self.call(old_mounts.close)  # releases the mount state dir for the new manager
            state.backend, state.error, state.choice = new, None, choice
            state.mounts = await self.call(make_mount_manager, state)
            if old_backend is not None:
                await self.call(old_backend.close)
            self.log.info("jupyterlab_pachls: switched to the %s backend at %s", new.kind, new.address)
        self.send_json(await self.describe())


# -- repos -------------------------------------------------------------------------------------
class ReposHandler(PachlsHandler):
    """``GET /pachls/api/repos``: every repo with its branches (two backend calls); ``POST``: create.

    The body is kept while the store's change token (``LocalBackend.change_token``) is
    unchanged, and carries an ETag: ``If-None-Match`` answers 304 when nothing changed.
    """

    def listing(self, backend) -> ReposListing:
        listing = self.state.extra.get("repos_listing")
        if listing is None or listing.backend is not backend:
            listing = self.state.extra["repos_listing"] = ReposListing(backend)
        return listing

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        body, etag = await self.call(self.listing(self.backend).load)
        self.set_header("ETag", etag)
        self.set_header("Cache-Control", "no-cache")
        if etag in [t.strip() for t in self.request.headers.get("If-None-Match", "").split(",")]:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def compute_etag(self) -> None:
        return None  # ETags are set explicitly above, from the cached body

    @tornado.web.authenticated
    @json_errors
    async def post(self) -> None:
        body = self.json_body()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("Field 'name' (a non-empty string) is required.", field="name")
        check_fields(body, ("name",), ("description",))
        description = string_field(body, "description", default="")
        repo_arg(name)
        repo = await self.call(self.backend.create_repo, name, description=description)
        self.send_json(repo_json(repo, []), status=201)


class RepoHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}``: one repo with its branches; ``DELETE``: delete it."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str) -> None:
        repo = repo_arg(repo)
        backend = self.backend

        def load():
            return backend.inspect_repo(repo), backend.list_branches(repo)

        found, branches = await self.call(load)
        self.send_json(repo_json(found, branches))

    @tornado.web.authenticated
    @json_errors
    async def delete(self, repo: str) -> None:
        repo = repo_arg(repo)
        backend = self.backend
        mounts = self.state.mounts
        if mounts is not None:
            using = [m.name for m in await self.call(mounts.list) if m.repo == repo]
            if using:
                raise Conflict(f"repo {repo} is mounted ({', '.join(using)}); unmount it first",
                               repo=repo, mounts=using)
        await self.call(backend.delete_repo, repo)
        self.send_empty()


# -- branches ----------------------------------------------------------------------------------
class BranchesHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches``; ``POST``: create a branch (optional head)."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str) -> None:
        repo = repo_arg(repo)
        backend = self.backend

        def load():
            backend.inspect_repo(repo)  # 404 for an unknown repo, not an empty list
            return backend.list_branches(repo)

        branches = await self.call(load)
        self.send_json({"branches": sorted((branch_json(b) for b in branches), key=lambda b: b["name"])})

    @tornado.web.authenticated
    @json_errors
    async def post(self, repo: str) -> None:
        repo = repo_arg(repo)
        body = self.json_body()
        check_fields(body, ("name",), ("head",))
        name = branch_arg(string_field(body, "name", required=True, allow_empty=False))
        head = body.get("head")
        if head is not None:
            head = ref_arg(head, "head")
        branch = await self.call(self.backend.create_branch, repo, name, head)
        self.send_json(branch.to_json(), status=201)


class BranchHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}``: the branch and its head."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        found = await self.call(self.backend.inspect_branch, repo, branch)
        self.send_json(found.to_json())


class CommitsHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}/commits?limit=&before=``: paged history."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        limit = self.int_query("limit", 50, 1, 1000)
        before = self.query("before")
        if before is not None and not is_commit_id(before):
            raise InvalidArgument("'before' must be the 'next' cursor of a previous page (a commit id)",
                                  parameter="before")
        backend = self.backend

        def load():
            backend.inspect_branch(repo, branch)  # 404 for an unknown branch
            return backend.list_commits(repo, branch, limit=limit + 1, before=before)

        commits = await self.call(load)
        more = len(commits) > limit
        commits = commits[:limit]
        self.send_json({
            "commits": [c.to_json() for c in commits],
            "next": commits[-1].id if more and commits else None,
        })


class BranchWaitHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}/wait?after=&timeout=``: long poll for the commits
    that land on the branch after ``after`` (a commit id; empty: from the branch's first commit; absent:
    from its head now), oldest first, waiting up to ``timeout`` seconds for one. Pass the answer's
    ``after`` back to continue (see ``pfs/follow.py``)."""

    closed = False

    def on_connection_close(self) -> None:
        self.closed = True

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        from .pfs.follow import MAX_POLL_INTERVAL, POLL_INTERVAL, BranchFollower

        repo, branch = repo_arg(repo), branch_arg(branch)
        after = self.query("after")
        if after and not is_commit_id(after):
            raise InvalidArgument("'after' must be a commit id (or empty: from the branch's first commit)",
                                  parameter="after")
        timeout = self.int_query("timeout", 30, 0, 300)
        follower = await self.call(BranchFollower, self.backend, repo, branch, after)
        deadline = asyncio.get_running_loop().time() + timeout
        interval = POLL_INTERVAL
        while True:
            commits = await self.call(follower.poll)
            if commits or self.closed or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(min(interval, max(0.0, deadline - asyncio.get_running_loop().time())))
            interval = min(interval * 1.5, MAX_POLL_INTERVAL)
        self.send_json({"commits": [c.to_json() for c in commits], "after": follower.cursor})


class BranchHeadHandler(PachlsHandler):
    """``PUT /pachls/api/repos/{repo}/branches/{branch}/head``: move the head (rollback)."""

    @tornado.web.authenticated
    @json_errors
    async def put(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        body = self.json_body()
        check_fields(body, ("commit",), ("expected_head", "reason"))
        to = ref_arg(body.get("commit"), "commit")
        expected = body.get("expected_head")
        if expected is not None and (not isinstance(expected, str) or not is_commit_id(expected)):
            raise InvalidArgument("'expected_head' must be a commit id", field="expected_head")
        reason = string_field(body, "reason", default="rollback", allow_empty=False)
        moved = await self.call(
            self.backend.move_branch, repo, branch, to,
            expected_head=expected, author=self.user_name, reason=reason,
        )
        self.send_json(moved.to_json())


class BranchMovesHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}/moves``: recorded head moves, newest first."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        backend = self.backend

        def load():
            backend.inspect_branch(repo, branch)
            return backend.branch_moves(repo, branch)

        moves = await self.call(load)
        self.send_json({"moves": [m.to_json() for m in moves]})


# -- commits and files ----------------------------------------------------------------------------
class CommitHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/commits/{ref}``: inspect a commit."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, ref: str) -> None:
        repo, ref = repo_arg(repo), ref_arg(ref)
        commit = await self.call(self.backend.inspect_commit, repo, ref)
        self.send_json(commit.to_json())


class FilesHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/commits/{ref}/files?path=&limit=&after=``: one directory page."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, ref: str) -> None:
        repo, ref = repo_arg(repo), ref_arg(ref)
        path = self.path_query("path")
        limit = self.int_query("limit", 400, 1, 10_000)
        after = self.query("after")
        if after is not None:
            normalize_path(after)  # a cursor is a path; refuse anything else
        page = await self.call(self.backend.list_dir, repo, ref, path, limit=limit, after=after)
        body = page.to_json()
        body["path"] = path
        self.send_json(body)


def content_disposition(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1] or "download"
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


class FileHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/commits/{ref}/file?path=``: download one file, streamed."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, ref: str) -> None:
        repo, ref = repo_arg(repo), ref_arg(ref)
        path = self.path_query("path", required=True)
        if path == "/":
            raise InvalidArgument("path must name a file, not the repo root", path=path)
        backend = self.backend

        def open_file():
            info = backend.inspect_file(repo, ref, path)
            if info.is_dir:
                raise InvalidArgument(f"{path} is a directory; list it with .../files?path=", path=path)
            # Read from the commit the info came from, so size and bytes always agree.
            return info, backend.read_file(repo, info.committed or ref, path)

        info, chunks = await self.call(open_file)
        ctype, encoding = mimetypes.guess_type(path, strict=False)
        if not ctype or encoding:
            ctype = "application/octet-stream"
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Length", str(info.size))
        self.set_header("Content-Disposition", content_disposition(path))
        self.set_header("X-Content-Type-Options", "nosniff")
        if info.hash:
            self.set_header("ETag", f'"{info.hash}"')
        done = object()
        try:
            while True:
                chunk = await self.call(next, chunks, done)
                if chunk is done:
                    break
                self.write(chunk)
                await self.flush()
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        self.finish()


class DiffHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/diff?from=&to=&path=``: changes between two commits."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str) -> None:
        repo = repo_arg(repo)
        to = self.query("to")
        if to is None:
            raise InvalidArgument("query parameter 'to' (a ref) is required", parameter="to")
        to = ref_arg(to, "to")
        old = self.query("from")
        if old is not None:
            old = ref_arg(old, "from")
        path = self.path_query("path")
        backend = self.backend

        def load():
            new_commit = backend.inspect_commit(repo, to)
            old_id = backend.inspect_commit(repo, old).id if old is not None else new_commit.parent
            return old_id, new_commit.id, backend.diff(repo, old_id, new_commit.id, path)

        old_id, new_id, changes = await self.call(load)
        self.send_json({
            "from": old_id,
            "to": new_id,
            "path": path,
            "changes": [c.to_json() for c in sorted(changes, key=lambda c: c.path)],
        })


# -- mounts --------------------------------------------------------------------------------------
def provenance_arg(raw: object) -> list[Provenance]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidArgument("'provenance' must be a list of 'repo@ref' strings or {repo, commit} objects",
                              field="provenance")
    out = []
    for item in raw:
        if isinstance(item, str):
            address = parse_address(item, require_ref=True)
            if address.path is not None:
                raise InvalidArgument(f"provenance {item!r} must not name a path", field="provenance")
            out.append(Provenance(repo=address.repo_key, commit=address.ref_text))
        elif isinstance(item, dict):
            check_fields(item, ("repo", "commit"), ("branch",))
            branch = item.get("branch")
            if branch is not None:
                branch_arg(branch)
            out.append(Provenance(repo=repo_arg(item["repo"]), commit=ref_arg(item["commit"], "commit"),
                                  branch=branch))
        else:
            raise InvalidArgument("each provenance entry must be 'repo@ref' or {repo, commit}",
                                  field="provenance")
    return out


def mount_json(status) -> dict:
    """A mount's status as the API shows it: a base that is no longer in the branch's history (the
    branch was rolled back below it) is ``diverged``, not a negative ``behind``."""
    shown = status.to_json()
    shown["diverged"] = shown.get("behind", 0) < 0
    shown["behind"] = max(0, shown.get("behind", 0))
    return shown


class MountsHandler(PachlsHandler):
    """``GET /pachls/api/mounts``: every mount; ``POST``: mount a repo."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        mounts = self.mounts
        found = await self.call(mounts.list)
        self.send_json({
            "mount_dir": str(mounts.mount_dir),
            "fuse": bool(mounts.use_fuse),
            "fuse_reason": mounts.fuse_reason,
            "mounts": [mount_json(m) for m in sorted(found, key=lambda m: m.name)],
        })

    @tornado.web.authenticated
    @json_errors
    async def post(self) -> None:
        body = self.json_body()
        check_fields(body, ("repo",), ("branch", "commit", "ref", "mode", "name"))
        repo = repo_arg(string_field(body, "repo", required=True, allow_empty=False))
        mode = body.get("mode", "ro")
        if mode not in ("ro", "rw"):
            raise InvalidArgument("'mode' must be 'ro' or 'rw'", field="mode")
        branch = body.get("branch")
        commit = body.get("commit")
        if "ref" in body:
            if branch is not None or commit is not None:
                raise InvalidArgument("give 'ref', or 'branch' and/or 'commit', not both", field="ref")
            ref = ref_arg(body["ref"], "ref")
            name_part, ancestors = parse_ref(ref)
            if ancestors:
                raise InvalidArgument("mount a branch or a commit id, not branch^N", field="ref")
            if is_commit_id(name_part):
                commit = name_part
            else:
                branch = name_part
        if branch is not None:
            branch = branch_arg(branch)
        if commit is not None and (not isinstance(commit, str) or not is_commit_id(commit)):
            raise InvalidArgument("'commit' must be a commit id", field="commit")
        name = body.get("name")
        if name is not None:
            name = mount_name_arg(name)
        mounts = self.mounts
        status = await self.call(mounts.mount, repo, branch, commit=commit, mode=mode, name=name)
        self.send_json(mount_json(status), status=201)


class MountHandler(PachlsHandler):
    """``GET /pachls/api/mounts/{name}``: status; ``DELETE``: unmount."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, name: str) -> None:
        name = mount_name_arg(name)
        status = await self.call(self.mounts.status, name)
        self.send_json(mount_json(status))

    @tornado.web.authenticated
    @json_errors
    async def delete(self, name: str) -> None:
        name = mount_name_arg(name)
        raw = self.query("discard")
        if raw not in (None, "true", "false", "1", "0"):
            raise InvalidArgument("'discard' must be true or false", parameter="discard")
        await self.call(self.mounts.unmount, name, discard=raw in ("true", "1"))
        self.send_empty()


class MountRefreshHandler(PachlsHandler):
    @tornado.web.authenticated
    @json_errors
    async def post(self, name: str) -> None:
        name = mount_name_arg(name)
        check_fields(self.json_body())
        status = await self.call(self.mounts.refresh, name)
        self.send_json(mount_json(status))


class MountChangesHandler(PachlsHandler):
    @tornado.web.authenticated
    @json_errors
    async def get(self, name: str) -> None:
        name = mount_name_arg(name)
        changes = await self.call(self.mounts.changes, name)
        self.send_json(changes.to_json())


class MountCommitHandler(PachlsHandler):
    @tornado.web.authenticated
    @json_errors
    async def post(self, name: str) -> None:
        name = mount_name_arg(name)
        body = self.json_body()
        check_fields(body, ("message",), ("provenance",))
        message = string_field(body, "message", required=True, allow_empty=False)
        if not message.strip():
            raise InvalidArgument("Field 'message' must not be blank.", field="message")
        provenance = provenance_arg(body.get("provenance"))
        mounts = self.mounts

        def run():
            commit = mounts.commit(name, message, author=self.user_name, provenance=provenance)
            return commit, mounts.status(name)

        commit, status = await self.call(run)
        self.send_json({"commit": commit.to_json(), "mount": mount_json(status)}, status=201)


class MountDiscardHandler(PachlsHandler):
    @tornado.web.authenticated
    @json_errors
    async def post(self, name: str) -> None:
        name = mount_name_arg(name)
        check_fields(self.json_body())
        mounts = self.mounts

        def run():
            mounts.discard(name)
            return mounts.status(name)

        status = await self.call(run)
        self.send_json(mount_json(status))


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


def fuse_status() -> tuple[bool, str]:
    """Whether mounts can use FUSE here, and if not why (the mount package decides when present)."""
    try:
        from .mount.fusefs import fuse_available as check
    except Exception:  # no mount package, or no libfuse to load
        ok = os.access("/dev/fuse", os.R_OK | os.W_OK)
        return ok, "" if ok else "/dev/fuse is not usable"
    available, reason = check()
    return bool(available), reason or ""


def fuse_available() -> bool:
    return fuse_status()[0]


SEG = r"([^/]+)"


def route_table() -> list[tuple[str, type[PachlsHandler]]]:
    """The one route table (paths relative to the server's base URL)."""
    from .labeling.routes import labeling_routes  # its handlers build on the classes above

    p = API_PREFIX
    return [
        (rf"{p}/health", HealthHandler),
        (rf"{p}/openapi\.json", OpenApiHandler),
        (rf"{p}/backend", BackendHandler),
        (rf"{p}/identity", IdentityHandler),
        (rf"{p}/repos", ReposHandler),
        (rf"{p}/repos/{SEG}", RepoHandler),
        (rf"{p}/repos/{SEG}/branches", BranchesHandler),
        (rf"{p}/repos/{SEG}/branches/{SEG}", BranchHandler),
        (rf"{p}/repos/{SEG}/branches/{SEG}/commits", CommitsHandler),
        (rf"{p}/repos/{SEG}/branches/{SEG}/head", BranchHeadHandler),
        (rf"{p}/repos/{SEG}/branches/{SEG}/wait", BranchWaitHandler),
        (rf"{p}/repos/{SEG}/branches/{SEG}/moves", BranchMovesHandler),
        (rf"{p}/repos/{SEG}/commits/{SEG}", CommitHandler),
        (rf"{p}/repos/{SEG}/commits/{SEG}/files", FilesHandler),
        (rf"{p}/repos/{SEG}/commits/{SEG}/file", FileHandler),
        (rf"{p}/repos/{SEG}/diff", DiffHandler),
        (rf"{p}/mounts", MountsHandler),
        (rf"{p}/mounts/{SEG}", MountHandler),
        (rf"{p}/mounts/{SEG}/refresh", MountRefreshHandler),
        (rf"{p}/mounts/{SEG}/changes", MountChangesHandler),
        (rf"{p}/mounts/{SEG}/commit", MountCommitHandler),
        (rf"{p}/mounts/{SEG}/discard", MountDiscardHandler),
        *labeling_routes(p, SEG),
        # Must stay last: tornado takes the first pattern that matches.
        (rf"{p}/(.*)", NotFoundHandler),
    ]
