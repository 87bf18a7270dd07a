"""The ``GET /pachls/api/repos`` listing: every repo with its branches, as one JSON body.

The panel polls it, so the body is kept while the store's change token holds
(``LocalBackend.change_token``: cheap, and it sees commits made by other processes),
and it carries an ETag so an unchanged listing answers 304.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

#: JSON of finished commits by (repo, id): a finished commit never changes, and a listing of
#: thousands of branches mostly shows the same commits request after request.
_COMMIT_JSON: dict[tuple[str, str], dict] = {}
_COMMIT_JSON_MAX = 200_000


def commit_json(commit) -> dict:
    if commit.finished is None:
        return commit.to_json()
    key = (commit.repo, commit.id)
    found = _COMMIT_JSON.get(key)
    if found is None:
        if len(_COMMIT_JSON) >= _COMMIT_JSON_MAX:
            _COMMIT_JSON.clear()
        found = _COMMIT_JSON[key] = commit.to_json()
    return found


def branch_json(branch) -> dict:
    return {"repo": branch.repo, "name": branch.name,
            "head": commit_json(branch.head) if branch.head is not None else None}


def repo_json(repo, branches) -> dict:
    item = repo.to_json()
    item["branches"] = sorted((branch_json(b) for b in branches), key=lambda b: b["name"])
    return item


def change_token_source(backend) -> Callable[[], Any] | None:
    """The backend's cheap change token (see ``LocalBackend.change_token``), or None: never keep."""
    own = getattr(backend, "change_token", None)
    return own if callable(own) else None


class ReposListing:
    """The last listing body and its ETag, valid while the store's change token holds."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.source = change_token_source(backend)
        self.token: Any = None
        self.body: bytes | None = None
        self.etag: str | None = None

    def current_token(self) -> Any:
        if self.source is None:
            return None
        try:
            return self.source()
        except Exception:
            return None

    def load(self) -> tuple[bytes, str]:
        """(body, etag): the kept body if nothing changed, else a fresh one (blocking)."""
        token = self.current_token()  # read first: the data loaded below is at least this new
        if token is not None and token == self.token and self.body is not None:
            return self.body, self.etag
        backend = self.backend
        repos, branches = backend.list_repos(), backend.list_branches()
        by_repo: dict[str, list] = {}
        for branch in branches:
            by_repo.setdefault(branch.repo, []).append(branch)
        out = [repo_json(repo, by_repo.get(repo.key, [])) for repo in repos]
        body = json.dumps(
            {"backend": {"kind": backend.kind, "address": backend.address}, "repos": out}
        ).encode()
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        if token is not None:
            self.token, self.body, self.etag = token, body, etag
        return body, etag
