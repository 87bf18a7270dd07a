"""``GET /pachls/api/panel``: everything the panel shows, in the one request it polls.

The answer holds what ``/health``, ``/repos`` and ``/mounts`` answer (those routes stay, for API
users). Each part loads on its own: one that fails (mounts 503 while the mount manager is down) is
null and its error is under ``errors``, and the others still show.

One ETag covers the answer: the repos listing's ETag (kept while the store's change token holds,
``listing.py``) plus a hash of the small parts, which are made on every poll (the mounts' status,
the FUSE check; a few hundred bytes). An unchanged panel is then a 304 with no body, and the
listing's bytes are neither copied nor sent. The health part asks the store nothing of its own: the
repos part has just asked it, so ``connected`` is whether that answered (``/health`` pings instead).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, Awaitable, Callable

import tornado.web

from ..pfs.errors import PfsError
from .base import ApiError, PachlsHandler, json_errors, store_unavailable
from .mounts import mounts_listing
from .repos import repos_listing
from .system import health_json


class PanelHandler(PachlsHandler):
    """``GET /pachls/api/panel``: health, repos and mounts, each part failing on its own; ETag and 304."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        state = self.state
        # One backend for the whole answer, taken before the first await: a backend switch meanwhile
        # must not give the new backend's health beside the old one's repos.
        backend, backend_error = state.backend, state.error

        async def load_repos() -> tuple[bytes, str]:
            if backend is None:
                raise store_unavailable(backend_error)
            return await repos_listing(self, backend)

        (repos, repos_error), (mounts, mounts_error) = await asyncio.gather(
            self.part(load_repos), self.part(lambda: mounts_listing(self)))
        if backend is None or repos_error is None:
            connected, error = repos_error is None, backend_error
        else:
            connected, error = False, repos_error["message"]
        health = json.dumps(health_json(state, backend, connected, error)).encode()
        mounts_body = json.dumps(mounts).encode() if mounts is not None else b"null"
        errors = json.dumps({name: e for name, e in (("repos", repos_error), ("mounts", mounts_error))
                             if e is not None}).encode()
        repos_body, repos_etag = repos if repos is not None else (b"null", "")
        digest = hashlib.sha256()
        for piece in (repos_etag.encode(), health, mounts_body, errors):
            digest.update(len(piece).to_bytes(8, "big") + piece)
        self.send_with_etag(f'"{digest.hexdigest()}"', lambda: b"".join((
            b'{"health":', health, b',"repos":', repos_body, b',"mounts":', mounts_body,
            b',"errors":', errors, b"}")))

    def compute_etag(self) -> None:
        return None  # set from the parts (send_with_etag)

    async def part(self, load: Callable[[], Awaitable[Any]]) -> tuple[Any, dict | None]:
        """(what ``load`` gave, None), or (None, the error as its own route would answer it plus its status)."""
        try:
            return await load(), None
        except PfsError as exc:
            error = ApiError.from_pfs(exc)
            return None, {"status": error.status_code, "error": error.code, "message": error.message,
                          "details": error.details}
        except Exception:  # a bug in one part must not hide the others; the traceback goes to the log
            self.log.exception("jupyterlab_pachls: a part of GET /pachls/api/panel failed")
            return None, {"status": 500, "error": "internal",
                          "message": "Internal server error; see the Jupyter server log.", "details": {}}
