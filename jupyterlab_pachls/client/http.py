"""The client of a Jupyter server's REST API (``/pachls/api``)."""

from __future__ import annotations

import email.utils
import io
import json
import math
import ssl
import tarfile
import threading
import time
import urllib.parse
from typing import Any, BinaryIO, Iterable, Iterator

import httpx

from ..pfs import (
    Branch,
    BranchMove,
    Commit,
    FileChange,
    FilePage,
    InvalidPath,
    PfsError,
    Repo,
    Unavailable,
    parse_repo,
)
from ..pfs.errors import error_from_code
from .base import (
    Client,
    to_address,
    to_branch_address,
    to_file_address,
    to_older_address,
)
from .streams import ChunkReader
from .convert import (
    annotation_change_from_json,
    blame_from_json,
    branch_from_json,
    change_from_json,
    changes_from_json,
    commit_from_json,
    file_from_json,
    mount_from_json,
    move_from_json,
    repo_from_json,
)
from .model import Mount, PendingChanges

PROBE_TIMEOUT = 3.0
REQUEST_TIMEOUT = 300.0
#: Seconds one long-poll request of ``subscribe`` waits on the server (then it asks again).
LONG_POLL = 30
#: With a ``stop`` event, a long-poll request waits at most this long, so that ``stop`` is seen soon.
STOP_CHECK = 2


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _overwrite(overwrite: bool | Iterable[str]) -> bool | list[str]:
    """The ``overwrite`` field of a mount's refresh or follow: a bool, or the paths agreed to."""
    return overwrite if isinstance(overwrite, bool) else list(overwrite)


def retry_after_seconds(value: str | None) -> int | None:
    """The seconds of a ``Retry-After`` header (delay-seconds or an HTTP date), or None."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, math.ceil(when.timestamp() - time.time()))


def error_from_response(status: int, body: bytes, url: str = "", retry_after: str | None = None) -> PfsError:
    """The typed error for an HTTP error answer (``{"error", "message", "details"}``). A ``Retry-After``
    (a busy server's 503) is kept as ``details["retry_after"]`` (seconds) and said in the message."""
    try:
        payload = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    if status in (401, 403):
        said = payload.get("message") if isinstance(payload, dict) else None
        exc = Unavailable(f"the Jupyter server at {url} refused the request ({status} {said or 'Forbidden'}); "
                          "check its token", status=status)
    elif isinstance(payload, dict) and isinstance(payload.get("message"), str):
        details = dict(payload["details"]) if isinstance(payload.get("details"), dict) else {}
        message = payload["message"]
        seconds = retry_after_seconds(retry_after)
        if seconds is not None:
            details["retry_after"] = seconds
            message += f" (retry in {seconds} s)"
        exc = error_from_code(payload.get("error"), message, details)
    else:
        exc = PfsError(f"the Jupyter server at {url} answered HTTP {status}", status=status)
    exc.status = status  # type: ignore[attr-defined]
    return exc


class _Member:
    """The bytes of one member of a downloaded tar: a cut stream is said as the download breaking off."""

    def __init__(self, raw: BinaryIO, broke_off) -> None:
        self.raw, self.broke_off = raw, broke_off

    def read(self, size: int = -1) -> bytes:
        try:
            return self.raw.read(size)
        except (tarfile.TarError, Unavailable) as exc:
            raise self.broke_off(exc) from None


class ServerClient(Client):
    """A client of a Jupyter server's ``/pachls/api`` (mounts and pending changes shared with the panel).

    Its requests share one ``httpx.Client``, so calls reuse open connections.
    """

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
        context = ssl.create_default_context()  # the system's certificates, as the browser sees them
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        self._http = httpx.Client(headers=headers, verify=context, follow_redirects=True)

    def __repr__(self) -> str:
        return f"<ServerClient {self.url}>"

    def describe(self) -> str:
        return f"Jupyter server at {self.url}"

    def close(self) -> None:
        self._http.close()

    # transport
    def request(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
                stream: bool = False, timeout: float | None = None,
                upload: tuple[str, Iterable[bytes]] | None = None) -> Any:
        """Call ``/pachls/api/<path>``; decoded JSON (None for 204), or a binary file object over the
        answer's body with ``stream``. ``upload``: (content type, chunks) sent as the body while made."""
        url = self.url + "pachls/api/" + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers: dict[str, str] = {}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif upload is not None:
            headers["Content-Type"], content = upload
        elif method in ("POST", "PUT", "PATCH"):
            content = b""
        request = self._http.build_request(method, url, content=content, headers=headers,
                                           timeout=timeout or self.timeout)
        try:
            response = self._http.send(request, stream=True)
        except httpx.RequestError as exc:
            raise self._unreachable(exc) from None
        try:  # read() ends by closing the response, giving its connection back to the pool
            if response.status_code >= 400:
                raise error_from_response(response.status_code, response.read(), self.url,
                                          response.headers.get("Retry-After"))
            if stream:
                return io.BufferedReader(ChunkReader(self._body(response), name=url, close=response.close))
            raw = response.read()
        except httpx.RequestError as exc:
            response.close()
            raise self._unreachable(exc) from None
        return json.loads(raw) if raw else None

    def _body(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes()
        except httpx.RequestError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> Unavailable:
        return Unavailable(f"cannot reach the Jupyter server at {self.url}: {exc}", url=self.url)

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
        a = to_address(address)
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
        a = to_address(address)
        return commit_from_json(self.request("GET", f"repos/{_q(a.repo_key)}/commits/{_q(a.ref_text)}"))

    def list_dir(self, address: str, limit: int = 400, after: str | None = None) -> FilePage:
        a = to_address(address, path=True)
        page = self.request("GET", f"repos/{_q(a.repo_key)}/commits/{_q(a.ref_text)}/files",
                            query={"path": a.path or "/", "limit": limit, "after": after})
        return FilePage(items=tuple(file_from_json(i) for i in page["items"]), next=page.get("next"))

    def open(self, address: str) -> BinaryIO:
        a = to_file_address(address)
        return self.request("GET", f"repos/{_q(a.repo_key)}/commits/{_q(a.ref_text)}/file",
                            query={"path": a.path}, stream=True)

    def diff(self, new: str, old: str | None = None, path: str = "/") -> list[FileChange]:
        n = to_address(new)
        query = {"to": n.ref_text, "path": path}
        if old is not None:
            o = to_older_address(old, n)
            query["from"] = o.ref_text
        body = self.request("GET", f"repos/{_q(n.repo_key)}/diff", query=query)
        return [change_from_json(c) for c in body["changes"]]

    def rollback(self, address: str, commit: str, *, expected_head: str | None = None,
                 reason: str = "rollback") -> Branch:
        a = to_branch_address(address)
        body: dict[str, Any] = {"commit": commit, "reason": reason}
        if expected_head:
            body["expected_head"] = expected_head
        return branch_from_json(self.request("PUT", f"repos/{_q(a.repo_key)}/branches/{_q(a.ref)}/head", body=body))

    def moves(self, address: str) -> list[BranchMove]:
        a = to_branch_address(address)
        body = self.request("GET", f"repos/{_q(a.repo_key)}/branches/{_q(a.ref)}/moves")
        return [move_from_json(m) for m in body["moves"]]

    def subscribe(self, address: str, *, after: str | None = None, timeout: float | None = None,
                  stop: threading.Event | None = None) -> Iterator[Commit]:
        a = to_branch_address(address)
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
        a = to_address(address)
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

    def commit(self, name: str, message: str, *, provenance: Iterable[str] = (),
               paths: Iterable[str] | None = None) -> Commit:
        body: dict[str, Any] = {"message": message}
        provenance = list(provenance)
        if provenance:
            body["provenance"] = provenance
        if paths is not None:
            body["paths"] = list(paths)
        return commit_from_json(self.request("POST", f"mounts/{_q(name)}/commit", body=body)["commit"])

    def discard(self, name: str) -> Mount:
        return mount_from_json(self.request("POST", f"mounts/{_q(name)}/discard"))

    def refresh(self, name: str, *, overwrite: bool | Iterable[str] = False) -> Mount:
        return mount_from_json(self.request("POST", f"mounts/{_q(name)}/refresh",
                                            body={"overwrite": _overwrite(overwrite)}))

    def follow(self, name: str, *, keep: bool = True, overwrite: bool | Iterable[str] = False) -> Mount:
        body = {"pending": "keep" if keep else "drop", "overwrite": _overwrite(overwrite)}
        return mount_from_json(self.request("POST", f"mounts/{_q(name)}/follow", body=body))

    # import
    def _put(self, repo: str, branch: str, files, message: str, on_file) -> Commit:
        from ..pfs.imports import tar_stream

        self.request("GET", f"repos/{_q(repo)}")  # a missing repo said plainly, before any byte is sent
        # a tar made while sent: repo paths as names, so the server's dest stays "/"
        body = self.request("POST", f"repos/{_q(repo)}/branches/{_q(branch)}/import", query={"message": message},
                            upload=("application/x-tar", tar_stream(files, on_file=on_file)))
        return commit_from_json(body["commit"])

    # labels
    def blame(self, address: str) -> list:
        a = to_file_address(address)
        body = self.request("GET", "labels/blame", query={"repo": a.repo_key, "ref": a.ref_text, "path": a.path})
        return [blame_from_json(e) for e in body["entries"]]

    def label_diff(self, new: str, old: str | None = None) -> list:
        n = to_address(new)
        query = {"repo": n.repo_key, "to": n.ref_text}
        if old is not None:
            o = to_older_address(old, n)
            query["from"] = o.ref_text
        else:
            query["from"] = self.inspect_commit(new).parent
        body = self.request("GET", "labels/diff", query=query)
        return [annotation_change_from_json(c) for c in body["changes"]]

    def _label_rows(self, repo: str, ref: str, data: str | None, path: str) -> list[dict]:
        body = self.request("GET", "labels/rows", query={"repo": repo, "ref": ref, "data": data, "path": path})
        return list(body["rows"])

    def _archive_members(self, repo: str, commit: str, path: str) -> Iterator[tuple[str, BinaryIO | None]]:
        body = self.request("GET", f"repos/{_q(repo)}/commits/{_q(commit)}/archive",
                            query={"path": path, "format": "tar"}, stream=True)

        def broke_off(exc: Exception) -> Unavailable:  # the server cut the answer: it failed midway
            reason = exc.message if isinstance(exc, Unavailable) else str(exc)
            return Unavailable(f"the download of {repo}@{commit}:{path} broke off: {reason}", repo=repo,
                               commit=commit, path=path)

        try:
            with tarfile.open(fileobj=body, mode="r|") as archive:
                for member in archive:
                    if not (member.isfile() or member.isdir()):
                        raise InvalidPath(f"the archive holds {member.name[:200]!r}, which is neither a file "
                                          "nor a directory", path=member.name[:200])
                    yield member.name, (_Member(archive.extractfile(member), broke_off) if member.isfile() else None)
                # tarfile ends quietly where the bytes end; only the zero block it read last (read past the
                # next header's offset) says the archive is whole: a proxy speaking HTTP/1.0 to Jupyter
                # turns the server's cut into a plain end of the body
                if archive.fileobj.tell() - archive.offset < tarfile.BLOCKSIZE:
                    raise tarfile.ReadError("the archive ends before its end-of-archive marker")
        except (tarfile.TarError, Unavailable) as exc:
            raise broke_off(exc) from None
        finally:
            body.close()

    def _export_chunks(self, repo: str, commit: str, format: str, classes: list[str] | None) -> Iterator[bytes]:
        query = {"repo": repo, "ref": commit, "format": format, "classes": ",".join(classes) if classes else None}
        with self.request("GET", "labels/export", query=query, stream=True) as body:
            while chunk := body.read(1 << 20):
                yield chunk

    def status(self) -> dict:
        backend = self.request("GET", "backend")
        try:
            mounts: list[Mount] | None = self.mounts()
            mounts_error = None
        except Unavailable as exc:
            mounts, mounts_error = None, exc.message
        return {"mode": self.mode, "where": self.describe(), "backend": backend,
                "mounts": mounts, "mounts_error": mounts_error}
