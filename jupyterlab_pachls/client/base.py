"""Python API: versioned repos, mounts and labels from a notebook or a script.

::

    from jupyterlab_pachls import connect

    pachls = connect()
    pachls.repos()                                   # [Repo(name='images', ...), ...]
    pachls.log("labels@master", limit=5)             # [Commit(...), ...] newest first
    with pachls.open("images@master:/cats/001.png") as f:
        png = f.read()
    df = pachls.labels("labels@master").to_frame()   # one row per (data file, annotation)

Where it goes (:func:`connect`):

1. ``connect(url=..., token=...)``, or ``$PACHLS_SERVER_URL`` (+ ``$PACHLS_SERVER_TOKEN``):
   that Jupyter server.
2. Otherwise a running Jupyter server with jupyterlab-pachls, found in the Jupyter
   runtime files (``jupyter server list``): first the server that started this kernel
   (``$JPY_PARENT_PID``), then servers whose root directory contains the current
   directory (deepest root first), then any other. The first that answers
   ``/pachls/api/health`` with its token wins. Mounts and pending changes are then
   the very ones the JupyterLab panel shows.
3. No server (a plain script, a pipeline): the store is opened directly, as the server
   would open it: ``connect(store=DIR)``, ``connect(pachd_address=...)``,
   ``$PACHD_ADDRESS`` (a Pachyderm cluster), the backend saved by the panel in
   ``<jupyter data dir>/pachls/backend.json``, else the embedded store at
   ``$PACHLS_STORE`` or ``<jupyter data dir>/pachls/store``. Mount operations need a
   Jupyter server and raise :class:`~jupyterlab_pachls.pfs.Unavailable` saying so.

Addresses use Pachyderm's syntax (``repo@branch``, ``repo@<commit id>``,
``repo@branch^2``, ``repo@ref:/path``, ``project/repo@...``); a missing ``@ref``
means ``master``. Every failure is a typed :class:`~jupyterlab_pachls.pfs.PfsError`
(``NotFound``, ``Conflict``, ``ParseError``, ``Unavailable``, ...) carrying the
server's message, whichever way the client is connected.
"""

from __future__ import annotations

import dataclasses
import getpass
import html
import io
import json
import math
import os
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Iterable, Iterator

from ..pfs import (
    AlreadyExists,
    Branch,
    BranchMove,
    Commit,
    Conflict,
    FileChange,
    FileInfo,
    FilePage,
    InvalidArgument,
    InvalidName,
    InvalidPath,
    NotFound,
    ParseError,
    PfsError,
    Provenance,
    Repo,
    Unavailable,
    parse_address,
    parse_repo,
)
from ..pfs.errors import error_from_code
from ..pfs.model import _Json

__all__ = [
    "connect", "Client", "ServerClient", "DirectClient", "Mount", "PendingChange", "PendingChanges",
    "Table", "find_server", "rank_servers",
]

SERVER_URL_ENV = "PACHLS_SERVER_URL"
SERVER_TOKEN_ENV = "PACHLS_SERVER_TOKEN"
DEFAULT_BRANCH = "master"
PROBE_TIMEOUT = 3.0
REQUEST_TIMEOUT = 300.0
#: Seconds one long-poll request of ``subscribe`` waits on the server (then it asks again).
LONG_POLL = 30
#: With a ``stop`` event, a long-poll request waits at most this long, so that ``stop`` is seen soon.
STOP_CHECK = 2

MOUNTS_NEED_SERVER = (
    "mounts need a running Jupyter server with jupyterlab-pachls (start JupyterLab, or connect(url=..., "
    "token=...)); this client opened the store directly"
)


# -- value types not in pfs ---------------------------------------------------------------------
@dataclass(frozen=True)
class Mount(_Json):
    """A mounted ``repo@branch`` (or commit): a folder at ``mountpoint``, read-only or read-write."""

    name: str
    repo: str
    branch: str | None
    commit: str | None  # the commit asked for (a commit mount), else None (follows the branch)
    base: str | None  # the commit the mount shows
    mode: str  # "ro" or "rw"
    presentation: str = ""  # "fuse" or "no-fuse"
    state: str = ""  # mounting, mounted, committing, error
    message: str = ""
    behind: int = 0  # commits on the branch head that the base does not have
    pending: int = 0  # staged file changes (rw)
    mountpoint: str = ""

    @property
    def path(self) -> str:
        """The folder to read and write (same as ``mountpoint``)."""
        return self.mountpoint


@dataclass(frozen=True)
class PendingChange(_Json):
    """One staged change of a read-write mount, against its base commit."""

    path: str
    change: str  # added, modified, deleted
    size: int = 0
    old_size: int | None = None


@dataclass(frozen=True)
class PendingChanges(_Json):
    """The staged changes of a mount; empty when nothing was written."""

    name: str
    base: str | None
    changes: tuple[PendingChange, ...] = ()
    unsupported: tuple[str, ...] = ()  # symlinks / special files that are never committed

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[PendingChange]:  # type: ignore[override]
        return iter(self.changes)


# -- tables ---------------------------------------------------------------------------------------
def format_cell(value: Any, limit: int | None = None) -> str:
    """A value as table text: lists joined by ', ', datetimes to the second, None as ''."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


class Table(list):
    """A list of row dicts that renders as an HTML table in Jupyter and as aligned text elsewhere.

    ``to_frame()`` gives a pandas DataFrame with the same columns.
    """

    def __init__(self, rows: Iterable[dict] = (), columns: Iterable[str] | None = None, title: str = "") -> None:
        super().__init__(rows)
        if columns is None:
            seen: dict[str, None] = {}
            for row in self:
                for key in row:
                    seen.setdefault(key, None)
            columns = seen
        self.columns = list(columns)
        self.title = title

    def to_frame(self):
        """The rows as a ``pandas.DataFrame`` (needs pandas)."""
        import pandas

        return pandas.DataFrame([dict(row) for row in self], columns=self.columns)

    def to_text(self, width: int = 60) -> str:
        if not self.columns:
            return f"({self.title or 'nothing'})" if not self else "\n".join(map(str, self))
        cells = [[format_cell(row.get(c), width) for c in self.columns] for row in self]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
        if not self:
            lines.append(f"(no {self.title or 'rows'})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = []
        for row in self:
            tds = []
            for c in self.columns:
                full = format_cell(row.get(c))
                short = format_cell(row.get(c), 300)
                title = f" title='{html.escape(full, quote=True)}'" if short != full else ""
                tds.append(f"<td style='text-align:left'{title}>{html.escape(short)}</td>")
            body.append("<tr>" + "".join(tds) + "</tr>")
        if not self:
            body.append(f"<tr><td colspan='{max(len(self.columns), 1)}'><em>no "
                        f"{html.escape(self.title or 'rows')}</em></td></tr>")
        return (f"<table class='pachls-table'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.to_text())

    def __repr__(self) -> str:
        return f"Table({list.__repr__(self)})"


# -- JSON -> value types ------------------------------------------------------------------------
def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _pick(cls: type, data: dict, **converted: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    values.update({k: v for k, v in converted.items() if k in names})
    return cls(**values)


def provenance_from_json(data: dict) -> Provenance:
    return _pick(Provenance, data)


def commit_from_json(data: dict | None) -> Commit | None:
    if data is None:
        return None
    return _pick(
        Commit, data, started=_dt(data.get("started")), finished=_dt(data.get("finished")),
        provenance=tuple(provenance_from_json(p) for p in data.get("provenance") or ()),
        metadata=dict(data.get("metadata") or {}),
    )


def repo_from_json(data: dict) -> Repo:
    branches = tuple(b["name"] if isinstance(b, dict) else b for b in data.get("branches") or ())
    return _pick(Repo, data, created=_dt(data.get("created")), branches=branches)


def branch_from_json(data: dict) -> Branch:
    return _pick(Branch, data, head=commit_from_json(data.get("head")))


def move_from_json(data: dict) -> BranchMove:
    return _pick(BranchMove, data, time=_dt(data.get("time")))


def file_from_json(data: dict | None) -> FileInfo | None:
    return None if data is None else _pick(FileInfo, data)


def change_from_json(data: dict) -> FileChange:
    return _pick(FileChange, data, old=file_from_json(data.get("old")), new=file_from_json(data.get("new")))


def mount_from_json(data: dict) -> Mount:
    return _pick(Mount, data)


def changes_from_json(data: dict) -> PendingChanges:
    return _pick(
        PendingChanges, data,
        changes=tuple(_pick(PendingChange, c) for c in data.get("changes") or ()),
        unsupported=tuple(data.get("unsupported") or ()),
    )


def blame_from_json(data: dict):
    from ..labeling.history import BlameEntry

    return _pick(
        BlameEntry, data, time=_dt(data.get("time")),
        annotators=tuple(data.get("annotators") or ()), changed_by=tuple(data.get("changed_by") or ()),
        labels=tuple(data.get("labels") or ()),
        provenance=tuple(provenance_from_json(p) if isinstance(p, dict) else p
                         for p in data.get("provenance") or ()),
    )


def annotation_change_from_json(data: dict):
    from ..labeling.history import AnnotationChange

    return _pick(AnnotationChange, data, changed_by=tuple(data.get("changed_by") or ()),
                 before=tuple(data.get("before") or ()), after=tuple(data.get("after") or ()))


def error_from_response(status: int, body: bytes, url: str = "") -> PfsError:
    """The typed error for an HTTP error answer (``{"error", "message", "details"}``)."""
    try:
        payload = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    if status in (401, 403):
        said = payload.get("message") if isinstance(payload, dict) else None
        exc = Unavailable(f"the Jupyter server at {url} refused the request ({status} {said or 'Forbidden'}); "
                          "check its token", status=status)
    elif isinstance(payload, dict) and isinstance(payload.get("message"), str):
        details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
        exc = error_from_code(payload.get("error"), payload["message"], details)
    else:
        exc = PfsError(f"the Jupyter server at {url} answered HTTP {status}", status=status)
    exc.status = status  # type: ignore[attr-defined]
    return exc


# -- addresses ----------------------------------------------------------------------------------
def _address(text: str, *, path: bool = False, default_ref: str | None = DEFAULT_BRANCH):
    """Parse ``repo[@ref][:/path]``; a missing ref is ``master``."""
    address = parse_address(text)
    if address.ref is None and default_ref is not None:
        address = dataclasses.replace(address, ref=default_ref)
    if not path and address.path is not None:
        raise ParseError(f"{text!r} must not name a path (expected repo@ref)", text=text, position=text.find(":"))
    return address


def _branch_address(text: str):
    address = _address(text)
    if address.is_commit or address.ancestors:
        raise InvalidArgument(f"{text!r} must name a branch (repo@branch), not a commit", address=text)
    return address


# -- the client ---------------------------------------------------------------------------------
class Client:
    """Operations on versioned repos, mounts and labels. Made by :func:`connect`.

    Two implementations share this interface: :class:`ServerClient` (through a Jupyter
    server's REST API, sharing its mounts with the panel) and :class:`DirectClient`
    (the store opened in this process; no mounts).
    """

    #: "server" or "direct"
    mode = ""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release connections (a direct client closes its store)."""

    def describe(self) -> str:
        """One line: where this client goes."""
        raise NotImplementedError

    # repos and branches
    def repos(self) -> list[Repo]:
        """Every repo; ``Repo.branches`` holds the branch names."""
        raise NotImplementedError

    def repo(self, name: str) -> Repo:
        """One repo (NotFound if it does not exist)."""
        raise NotImplementedError

    def create_repo(self, name: str, description: str = "") -> Repo:
        """Create an empty repo (AlreadyExists if it exists)."""
        raise NotImplementedError

    def branches(self, repo: str) -> list[Branch]:
        """The branches of ``repo`` with their head commits, by name."""
        raise NotImplementedError

    # history and files
    def log(self, address: str, limit: int = 50) -> list[Commit]:
        """History of ``repo@branch`` (or from ``repo@<commit>`` / ``repo@branch^N``), newest first, at most ``limit``."""
        raise NotImplementedError

    def inspect_commit(self, address: str) -> Commit:
        """The commit ``repo@ref`` names (a branch head, ``branch^N`` or a commit id)."""
        raise NotImplementedError

    def _log_from_commit(self, address: str, limit: int) -> list[Commit]:
        """History from a commit (``repo@<id>`` or ``repo@branch^N``) back through its parents."""
        commit = self.inspect_commit(address)
        repo = _address(address).repo_key
        out = [commit]
        while len(out) < limit and out[-1].parent:
            out.append(self.inspect_commit(f"{repo}@{out[-1].parent}"))
        return out

    def list_dir(self, address: str, limit: int = 400, after: str | None = None) -> FilePage:
        """One page of the directory ``repo@ref:/path``; pass ``page.next`` as ``after`` for the next."""
        raise NotImplementedError

    def ls(self, address: str, limit: int | None = 1000) -> list[FileInfo]:
        """The entries of the directory ``repo@ref:/path`` (paged underneath), at most ``limit``."""
        out: list[FileInfo] = []
        after = None
        while limit is None or len(out) < limit:
            page_size = 400 if limit is None else min(400, limit - len(out))
            page = self.list_dir(address, limit=page_size, after=after)
            out.extend(page.items)
            if not page.next:
                break
            after = page.next
        return out

    def open(self, address: str) -> BinaryIO:
        """A readable binary file object over ``repo@ref:/path`` (use it in ``with``)."""
        raise NotImplementedError

    def read(self, address: str) -> bytes:
        """The whole content of ``repo@ref:/path``."""
        with self.open(address) as f:
            return f.read()

    def diff(self, new: str, old: str | None = None, path: str = "/") -> list[FileChange]:
        """Files changed from ``old`` (default: the parent of ``new``) to ``new``; both ``repo@ref``."""
        raise NotImplementedError

    def rollback(self, address: str, commit: str, *, expected_head: str | None = None,
                 reason: str = "rollback") -> Branch:
        """Point ``repo@branch`` at ``commit`` (a commit id or ``branch^N``). Recorded; nothing is lost."""
        raise NotImplementedError

    def moves(self, address: str) -> list[BranchMove]:
        """Recorded head moves (rollbacks) of ``repo@branch``, newest first."""
        raise NotImplementedError

    # following a branch
    def subscribe(self, address: str, *, after: str | None = None, timeout: float | None = None,
                  stop: threading.Event | None = None) -> Iterator[Commit]:
        """Each commit that lands on ``repo@branch``, once, oldest first, as it lands (an iterator).

        Starts from the branch head at the time of the call, or after ``after`` (a commit id,
        ``repo@<id>`` or ``repo@branch^N``: commits that landed since are yielded at once). Ends when
        nothing landed for ``timeout`` seconds (None: never) or once ``stop`` (a ``threading.Event``)
        is set. A rollback is no new commit. ``for commit in pachls.subscribe("labels@master"):
        retrain(commit)`` runs once per label commit.
        """
        raise NotImplementedError

    def wait(self, address: str, *, after: str | None = None, timeout: float | None = None) -> Commit | None:
        """Block until a commit lands on ``repo@branch`` (after ``after``, else after the head now) and
        return it (the oldest, if several did); None when ``timeout`` seconds pass first."""
        commits = self.subscribe(address, after=after, timeout=timeout)
        try:
            return next(commits, None)
        finally:
            commits.close()

    def _after_id(self, branch_address, after: str | None) -> str | None:
        """The commit id ``after`` names in the followed repo (None stays None: from the head now)."""
        if after is None:
            return None
        if not isinstance(after, str) or not after:
            raise InvalidArgument("after must name a commit: an id, repo@<id> or repo@branch^N", after=repr(after))
        text = after if "@" in after else f"{branch_address.repo_key}@{after}"
        named = _address(text)
        if named.repo_key != branch_address.repo_key:
            raise InvalidArgument(f"after names a commit of {named.repo_key}, not of {branch_address.repo_key}",
                                  after=after)
        if named.is_commit and not named.ancestors:
            return named.ref
        return self.inspect_commit(text).id

    # mounts (server only)
    def mounts(self) -> list[Mount]:
        """Every mount, by name (the ones the panel shows)."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def mount(self, address: str, *, rw: bool = False, name: str | None = None) -> Mount:
        """Mount ``repo@branch`` (or a commit) as a folder; ``rw=True`` stages writes for :meth:`commit`."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def mount_status(self, name: str) -> Mount:
        """The status of one mount (NotFound if ``name`` is not mounted)."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def unmount(self, name: str, *, discard: bool = False) -> None:
        """Unmount; staged changes are dropped only with ``discard=True``."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def changes(self, name: str) -> PendingChanges:
        """The staged (written, not yet committed) changes of a read-write mount."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def commit(self, name: str, message: str, *, provenance: Iterable[str] = ()) -> Commit:
        """Land every staged change of mount ``name`` as ONE commit; ``provenance``: ``repo@ref`` strings."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def discard(self, name: str) -> Mount:
        """Drop every staged change of mount ``name``."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def refresh(self, name: str) -> Mount:
        """Move mount ``name`` to its branch head."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    # labels
    def blame(self, address: str) -> list:
        """Every commit that changed the label of ``repo@ref:/path`` (data or label path), newest first.

        Returns :class:`jupyterlab_pachls.labeling.history.BlameEntry` values.
        """
        raise NotImplementedError

    def label_diff(self, new: str, old: str | None = None) -> list:
        """Annotation-level changes between two label commits (``repo@ref``; ``old`` defaults to the parent).

        Returns :class:`jupyterlab_pachls.labeling.history.AnnotationChange` values.
        """
        raise NotImplementedError

    def labels(self, address: str, data: str | None = None, path: str = "/") -> Table:
        """One row per (data file, annotation) in the label files of ``repo@ref`` below ``path``.

        Row fields: data_path, data_repo, data_commit, label_path, label_repo, label_commit,
        annotation, annotator (who created it, also ``created_by``), updated_by (who last changed it),
        labels, created_at, updated_at, lead_time, was_cancelled, result.
        ``data="images"`` keeps labels made on that data repo; ``data="images@ref"`` keeps those
        made on the commit ``ref`` names or on one of its ancestors (labels of that version of the
        data or of an earlier one). ``.to_frame()`` gives a DataFrame.
        """
        target = _address(address)
        data_repo, data_ref = None, None
        if data is not None:
            data_address = _address(data, default_ref=None)
            data_repo, data_ref = data_address.repo_key, data_address.ref_text
        rows = self._label_rows(target.repo_key, target.ref_text, data_repo, path)
        if data_ref is not None:
            wanted = {r["data_commit"] for r in rows if r.get("data_commit")}
            keep = self._ancestors_among(data_repo, data_ref, wanted)
            rows = [r for r in rows if r.get("data_commit") in keep]
        return Table(rows, columns=LABEL_COLUMNS, title="labels")

    def _label_rows(self, repo: str, ref: str, data: str | None, path: str) -> list[dict]:
        raise NotImplementedError

    def _ancestors_among(self, repo: str, ref: str, wanted: set[str]) -> set[str]:
        """Which of ``wanted`` are ``repo@ref``'s commit or its ancestors (walks parents, stops early)."""
        found: set[str] = set()
        commit = self.inspect_commit(f"{repo}@{ref}")
        seen = 0
        while commit is not None and found != wanted and seen < 100_000:
            seen += 1
            if commit.id in wanted:
                found.add(commit.id)
            if not commit.parent:
                break
            commit = self.inspect_commit(f"{repo}@{commit.parent}")
        return found

    def status(self) -> dict:
        """Where this client goes, the backend in use, and the mounts (server only)."""
        raise NotImplementedError


LABEL_COLUMNS = ("data_path", "data_repo", "data_commit", "label_path", "label_repo", "label_commit",
                 "annotation", "annotator", "created_by", "updated_by", "labels", "created_at", "updated_at",
                 "lead_time", "was_cancelled", "result")


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


class ServerClient(Client):
    """A client of a Jupyter server's ``/pachls/api`` (mounts and pending changes shared with the panel)."""

    mode = "server"

    def __init__(self, url: str, token: str = "", *, timeout: float = REQUEST_TIMEOUT,
                 verify: bool | None = None, info: dict | None = None) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token or ""
        self.timeout = timeout
        self.info = info or {}
        host = urllib.parse.urlparse(self.url).hostname or ""
        if verify is None:  # a local server's certificate is usually self-signed
            verify = host not in ("localhost", "127.0.0.1", "::1")
        context = None
        if self.url.startswith("https:") and not verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def __repr__(self) -> str:
        return f"<ServerClient {self.url}>"

    def describe(self) -> str:
        return f"Jupyter server at {self.url}"

    # transport
    def request(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
                stream: bool = False, timeout: float | None = None) -> Any:
        """Call ``/pachls/api/<path>``; decoded JSON (None for 204), or the open response with ``stream``."""
        url = self.url + "pachls/api/" + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            data = b""
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            response = self._opener.open(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise error_from_response(exc.code, exc.read(), self.url) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(f"cannot reach the Jupyter server at {self.url}: {reason}", url=self.url) from None
        if stream:
            return response
        with response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def probe(self, timeout: float = PROBE_TIMEOUT) -> dict:
        """``GET /pachls/api/health`` (raises when the server does not answer it)."""
        return self.request("GET", "health", timeout=timeout)

    # repos and branches
    def repos(self) -> list[Repo]:
        return [repo_from_json(r) for r in self.request("GET", "repos")["repos"]]

    def repo(self, name: str) -> Repo:
        return repo_from_json(self.request("GET", f"repos/{_q(str(parse_repo(name)))}"))

    def create_repo(self, name: str, description: str = "") -> Repo:
        parse_repo(name)
        return repo_from_json(self.request("POST", "repos", body={"name": name, "description": description}))

    def branches(self, repo: str) -> list[Branch]:
        key = str(parse_repo(repo))
        return [branch_from_json(b) for b in self.request("GET", f"repos/{_q(key)}/branches")["branches"]]

    # history and files
    def log(self, address: str, limit: int = 50) -> list[Commit]:
        a = _address(address)
        if a.is_commit or a.ancestors:
            return self._log_from_commit(address, limit)
        out: list[Commit] = []
        before = None
        while len(out) < limit:
            page = self.request("GET", f"repos/{_q(a.repo_key)}/branches/{_q(a.ref)}/commits",
                                query={"limit": min(1000, limit - len(out)), "before": before})
            out.extend(commit_from_json(c) for c in page["commits"])
            before = page.get("next")
            if not before:
                break
        return out

    def inspect_commit(self, address: str) -> Commit:
        a = _address(address)
        return commit_from_json(self.request("GET", f"repos/{_q(a.repo_key)}/commits/{_q(a.ref_text)}"))

    def list_dir(self, address: str, limit: int = 400, after: str | None = None) -> FilePage:
        a = _address(address, path=True)
        page = self.request("GET", f"repos/{_q(a.repo_key)}/commits/{_q(a.ref_text)}/files",
                            query={"path": a.path or "/", "limit": limit, "after": after})
        return FilePage(items=tuple(file_from_json(i) for i in page["items"]), next=page.get("next"))

    def open(self, address: str) -> BinaryIO:
        a = _address(address, path=True)
        if a.path in (None, "/"):
            raise InvalidArgument(f"{address!r} must name a file: repo@ref:/path", address=address)
        return self.request("GET", f"repos/{_q(a.repo_key)}/commits/{_q(a.ref_text)}/file",
                            query={"path": a.path}, stream=True)

    def diff(self, new: str, old: str | None = None, path: str = "/") -> list[FileChange]:
        n = _address(new)
        query = {"to": n.ref_text, "path": path}
        if old is not None:
            o = _address(old)
            if o.repo_key != n.repo_key:
                raise InvalidArgument(f"compare two commits of one repo, not {o.repo_key} and {n.repo_key}")
            query["from"] = o.ref_text
        body = self.request("GET", f"repos/{_q(n.repo_key)}/diff", query=query)
        return [change_from_json(c) for c in body["changes"]]

    def rollback(self, address: str, commit: str, *, expected_head: str | None = None,
                 reason: str = "rollback") -> Branch:
        a = _branch_address(address)
        body: dict[str, Any] = {"commit": commit, "reason": reason}
        if expected_head:
            body["expected_head"] = expected_head
        return branch_from_json(self.request("PUT", f"repos/{_q(a.repo_key)}/branches/{_q(a.ref)}/head", body=body))

    def moves(self, address: str) -> list[BranchMove]:
        a = _branch_address(address)
        body = self.request("GET", f"repos/{_q(a.repo_key)}/branches/{_q(a.ref)}/moves")
        return [move_from_json(m) for m in body["moves"]]

    def subscribe(self, address: str, *, after: str | None = None, timeout: float | None = None,
                  stop: threading.Event | None = None) -> Iterator[Commit]:
        a = _branch_address(address)
        route = f"repos/{_q(a.repo_key)}/branches/{_q(a.ref)}/wait"

        def ask(cursor: str | None, seconds: int) -> tuple[list[Commit], str]:
            body = self.request("GET", route, query={"after": cursor, "timeout": seconds},
                                timeout=seconds + REQUEST_TIMEOUT)
            return [commit_from_json(c) for c in body["commits"]], body["after"]

        # The starting point is fixed now (not at the first next()): a commit landing meanwhile is new.
        first, cursor = ask(self._after_id(a, after), 0)

        def commits() -> Iterator[Commit]:
            nonlocal cursor
            fresh = first
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if fresh:
                    yield from fresh
                    deadline = None if timeout is None else time.monotonic() + timeout
                if stop is not None and stop.is_set():
                    return
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                seconds = LONG_POLL if left is None else min(LONG_POLL, math.ceil(left))
                if stop is not None:
                    seconds = min(seconds, STOP_CHECK)
                fresh, cursor = ask(cursor, seconds)

        return commits()

    # mounts
    def mounts(self) -> list[Mount]:
        return [mount_from_json(m) for m in self.request("GET", "mounts")["mounts"]]

    def mount(self, address: str, *, rw: bool = False, name: str | None = None) -> Mount:
        a = _address(address)
        ref = a.ref_text
        if a.ancestors:  # a mount shows a branch or one commit: resolve branch^N to its commit
            ref = self.inspect_commit(address).id
        body: dict[str, Any] = {"repo": a.repo_key, "ref": ref, "mode": "rw" if rw else "ro"}
        if name:
            body["name"] = name
        return mount_from_json(self.request("POST", "mounts", body=body))

    def mount_status(self, name: str) -> Mount:
        return mount_from_json(self.request("GET", f"mounts/{_q(name)}"))

    def unmount(self, name: str, *, discard: bool = False) -> None:
        self.request("DELETE", f"mounts/{_q(name)}", query={"discard": "true" if discard else None})

    def changes(self, name: str) -> PendingChanges:
        return changes_from_json(self.request("GET", f"mounts/{_q(name)}/changes"))

    def commit(self, name: str, message: str, *, provenance: Iterable[str] = ()) -> Commit:
        body: dict[str, Any] = {"message": message}
        provenance = list(provenance)
        if provenance:
            body["provenance"] = provenance
        return commit_from_json(self.request("POST", f"mounts/{_q(name)}/commit", body=body)["commit"])

    def discard(self, name: str) -> Mount:
        return mount_from_json(self.request("POST", f"mounts/{_q(name)}/discard"))

    def refresh(self, name: str) -> Mount:
        return mount_from_json(self.request("POST", f"mounts/{_q(name)}/refresh"))

    # labels
    def blame(self, address: str) -> list:
        a = _address(address, path=True)
        if a.path in (None, "/"):
            raise InvalidArgument(f"{address!r} must name a file: repo@ref:/path", address=address)
        body = self.request("GET", "labels/blame", query={"repo": a.repo_key, "ref": a.ref_text, "path": a.path})
        return [blame_from_json(e) for e in body["entries"]]

    def label_diff(self, new: str, old: str | None = None) -> list:
        n = _address(new)
        query = {"repo": n.repo_key, "to": n.ref_text}
        if old is not None:
            o = _address(old)
            if o.repo_key != n.repo_key:
                raise InvalidArgument(f"compare two commits of one repo, not {o.repo_key} and {n.repo_key}")
            query["from"] = o.ref_text
        else:
            query["from"] = self.inspect_commit(new).parent
        body = self.request("GET", "labels/diff", query=query)
        return [annotation_change_from_json(c) for c in body["changes"]]

    def _label_rows(self, repo: str, ref: str, data: str | None, path: str) -> list[dict]:
        body = self.request("GET", "labels/rows", query={"repo": repo, "ref": ref, "data": data, "path": path})
        return list(body["rows"])

    def status(self) -> dict:
        backend = self.request("GET", "backend")
        try:
            mounts: list[Mount] | None = self.mounts()
            mounts_error = None
        except Unavailable as exc:
            mounts, mounts_error = None, exc.message
        return {"mode": self.mode, "where": self.describe(), "backend": backend,
                "mounts": mounts, "mounts_error": mounts_error}


class _ChunkReader(io.RawIOBase):
    """A raw binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes], name: str = "") -> None:
        self._chunks = chunks
        self._buffer = b""
        self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


def default_backend_spec() -> dict:
    """The backend a client without a server opens: as the Jupyter server would (see module doc)."""
    from jupyter_core.paths import jupyter_data_dir

    address = os.environ.get("PACHD_ADDRESS", "").strip()
    if address:
        return {"kind": "pachyderm", "pachd_address": address}
    saved = os.path.join(jupyter_data_dir(), "pachls", "backend.json")
    try:
        with open(saved, encoding="utf-8") as f:
            choice = json.load(f)
    except (OSError, ValueError):
        choice = None
    if isinstance(choice, dict) and choice.get("kind") == "pachyderm":
        return dict(choice)
    store = os.environ.get("PACHLS_STORE", "").strip()
    store = os.path.abspath(os.path.expanduser(store)) if store else os.path.join(jupyter_data_dir(), "pachls", "store")
    return {"kind": "local", "path": store}


class DirectClient(Client):
    """The store opened in this process (no Jupyter server): everything but mounts."""

    mode = "direct"

    def __init__(self, spec: dict | None = None, *, author: str | None = None) -> None:
        from ..pfs import open_backend

        self.spec = dict(spec or default_backend_spec())
        self.backend = open_backend(self.spec)
        if author is None:
            try:
                author = getpass.getuser()
            except Exception:  # no user name in this environment
                author = ""
        self.author = author

    def __repr__(self) -> str:
        return f"<DirectClient {self.backend.kind} {self.backend.address}>"

    def describe(self) -> str:
        return f"no Jupyter server: {self.backend.kind} store at {self.backend.address} opened directly"

    def close(self) -> None:
        self.backend.close()

    def repos(self) -> list[Repo]:
        by_repo: dict[str, list[str]] = {}
        for b in self.backend.list_branches():
            by_repo.setdefault(b.repo, []).append(b.name)
        return [dataclasses.replace(r, branches=tuple(sorted(by_repo.get(r.key, ()))))
                for r in self.backend.list_repos()]

    def repo(self, name: str) -> Repo:
        key = str(parse_repo(name))
        found = self.backend.inspect_repo(key)
        return dataclasses.replace(found, branches=tuple(sorted(b.name for b in self.backend.list_branches(key))))

    def create_repo(self, name: str, description: str = "") -> Repo:
        parse_repo(name)
        return self.backend.create_repo(name, description=description)

    def branches(self, repo: str) -> list[Branch]:
        key = str(parse_repo(repo))
        self.backend.inspect_repo(key)
        return sorted(self.backend.list_branches(key), key=lambda b: b.name)

    def log(self, address: str, limit: int = 50) -> list[Commit]:
        a = _address(address)
        if a.is_commit or a.ancestors:
            return self._log_from_commit(address, limit)
        self.backend.inspect_branch(a.repo_key, a.ref)
        return self.backend.list_commits(a.repo_key, a.ref, limit=limit)

    def inspect_commit(self, address: str) -> Commit:
        a = _address(address)
        return self.backend.inspect_commit(a.repo_key, a.ref_text)

    def list_dir(self, address: str, limit: int = 400, after: str | None = None) -> FilePage:
        a = _address(address, path=True)
        return self.backend.list_dir(a.repo_key, a.ref_text, a.path or "/", limit=limit, after=after)

    def open(self, address: str) -> BinaryIO:
        a = _address(address, path=True)
        if a.path in (None, "/"):
            raise InvalidArgument(f"{address!r} must name a file: repo@ref:/path", address=address)
        info = self.backend.inspect_file(a.repo_key, a.ref_text, a.path)
        if info.is_dir:
            raise InvalidArgument(f"{a.path} is a directory; list it with ls()", path=a.path)
        chunks = self.backend.read_file(a.repo_key, info.committed or a.ref_text, a.path)
        return io.BufferedReader(_ChunkReader(iter(chunks), name=str(a)))  # type: ignore[return-value]

    def diff(self, new: str, old: str | None = None, path: str = "/") -> list[FileChange]:
        n = _address(new)
        new_commit = self.backend.inspect_commit(n.repo_key, n.ref_text)
        if old is not None:
            o = _address(old)
            if o.repo_key != n.repo_key:
                raise InvalidArgument(f"compare two commits of one repo, not {o.repo_key} and {n.repo_key}")
            old_id = self.backend.inspect_commit(o.repo_key, o.ref_text).id
        else:
            old_id = new_commit.parent
        return sorted(self.backend.diff(n.repo_key, old_id, new_commit.id, path), key=lambda c: c.path)

    def rollback(self, address: str, commit: str, *, expected_head: str | None = None,
                 reason: str = "rollback") -> Branch:
        a = _branch_address(address)
        return self.backend.move_branch(a.repo_key, a.ref, commit, expected_head=expected_head,
                                        author=self.author, reason=reason)

    def moves(self, address: str) -> list[BranchMove]:
        a = _branch_address(address)
        self.backend.inspect_branch(a.repo_key, a.ref)
        return self.backend.branch_moves(a.repo_key, a.ref)

    def subscribe(self, address: str, *, after: str | None = None, timeout: float | None = None,
                  stop: threading.Event | None = None) -> Iterator[Commit]:
        from ..pfs.follow import BranchFollower

        a = _branch_address(address)
        # The starting point is fixed now (not at the first next()): a commit landing meanwhile is new.
        follower = BranchFollower(self.backend, a.repo_key, a.ref, self._after_id(a, after))

        def commits() -> Iterator[Commit]:
            while True:
                fresh = follower.wait(timeout, stop)
                if not fresh:
                    return
                yield from fresh
                if stop is not None and stop.is_set():
                    return

        return commits()

    def blame(self, address: str) -> list:
        from ..labeling.history import blame

        a = _address(address, path=True)
        if a.path in (None, "/"):
            raise InvalidArgument(f"{address!r} must name a file: repo@ref:/path", address=address)
        return blame(self.backend, a.repo_key, a.ref_text, a.path)

    def label_diff(self, new: str, old: str | None = None) -> list:
        from ..labeling.history import diff_labels

        n = _address(new)
        new_commit = self.backend.inspect_commit(n.repo_key, n.ref_text)
        old_id = new_commit.parent
        if old is not None:
            o = _address(old)
            if o.repo_key != n.repo_key:
                raise InvalidArgument(f"compare two commits of one repo, not {o.repo_key} and {n.repo_key}")
            old_id = self.backend.inspect_commit(o.repo_key, o.ref_text).id
        return diff_labels(self.backend, n.repo_key, old_id, new_commit.id)

    def _label_rows(self, repo: str, ref: str, data: str | None, path: str) -> list[dict]:
        from ..labeling.rows import label_rows

        return label_rows(self.backend, repo, ref, data=data, path=path)

    def status(self) -> dict:
        return {"mode": self.mode, "where": self.describe(),
                "backend": {"kind": self.backend.kind, "address": self.backend.address},
                "mounts": None, "mounts_error": MOUNTS_NEED_SERVER}


# -- finding the server -----------------------------------------------------------------------
def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([os.path.realpath(path), os.path.realpath(root)]) == os.path.realpath(root)
    except ValueError:  # different drives
        return False


def rank_servers(servers: Iterable[dict], cwd: str, parent_pid: int | None = None) -> list[dict]:
    """Order runtime-file entries: the kernel's own server, then roots holding ``cwd`` (deepest first), then the rest."""
    def key(info: dict) -> tuple:
        root = info.get("root_dir") or info.get("notebook_dir") or ""
        if parent_pid is not None and info.get("pid") == parent_pid:
            return (0, 0)
        if root and _inside(cwd, root):
            return (1, -len(os.path.realpath(root)))
        return (2, 0)

    usable = [s for s in servers if str(s.get("url", "")).startswith(("http://", "https://"))]
    return sorted(usable, key=key)


def running_servers() -> list[dict]:
    """Entries of the Jupyter runtime files of live servers (``jupyter server list``)."""
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return []
    try:
        return list(list_running_servers())
    except OSError:
        return []


def find_server(cwd: str | None = None, timeout: float = PROBE_TIMEOUT) -> ServerClient | None:
    """A client of the first reachable Jupyter server with jupyterlab-pachls, or None (see module doc)."""
    parent = os.environ.get("JPY_PARENT_PID", "")
    parent_pid = int(parent) if parent.isdigit() else None
    fallback_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    for info in rank_servers(running_servers(), cwd or os.getcwd(), parent_pid):
        client = ServerClient(info["url"], info.get("token") or fallback_token, info=info)
        try:
            client.probe(timeout)
        except PfsError:
            continue
        return client
    return None


def connect(url: str | None = None, token: str | None = None, *, store: str | None = None,
            pachd_address: str | None = None, auth_token: str | None = None,
            server: bool | None = None) -> Client:
    """A client for versioned repos, mounts and labels.

    - ``url`` (+ ``token``), or ``$PACHLS_SERVER_URL`` (+ ``$PACHLS_SERVER_TOKEN``): that Jupyter server.
    - ``store=DIR``: the embedded store at DIR, opened directly (no server).
    - ``pachd_address=...`` (+ ``auth_token``): a Pachyderm cluster, opened directly (no server).
    - otherwise a running Jupyter server found from this kernel (see the module doc), else the
      store opened directly. ``server=True`` requires a server (Unavailable if none answers);
      ``server=False`` never looks for one.

    A direct client cannot mount: its mount methods raise Unavailable saying a server is needed.
    """
    if store is not None or pachd_address is not None:
        if store is not None:
            spec: dict = {"kind": "local", "path": os.path.abspath(os.path.expanduser(store))}
        else:
            spec = {"kind": "pachyderm", "pachd_address": pachd_address}
            if auth_token:
                spec["auth_token"] = auth_token
        return DirectClient(spec)
    url = url or os.environ.get(SERVER_URL_ENV, "").strip() or None
    if url is not None:
        client = ServerClient(url, token if token is not None else os.environ.get(SERVER_TOKEN_ENV, ""))
        client.probe()
        return client
    if server is not False:
        found = find_server()
        if found is not None:
            return found
        if server:
            raise Unavailable("no running Jupyter server with jupyterlab-pachls answered (see `jupyter server list`)")
    return DirectClient()
