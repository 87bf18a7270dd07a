"""Routes that move data in and out in bulk: import into one commit, the imports running.

``POST /repos/{repo}/branches/{branch}/import`` takes one of three bodies, by ``Content-Type``:

- ``application/x-tar`` (or gzip): a tar stream, read while it arrives;
- ``multipart/form-data``: the files a browser uploads (each part's filename, relative paths
  allowed), read while it arrives;
- ``application/json`` ``{"source": ["folder", ...]}``: paths under the Jupyter root that the server
  reads itself (confined to the root, symlinks out refused).

Query: ``dest`` (repo folder to import into, default ``/``), ``message``, ``id`` (a name of the
client's choosing, to follow the import at ``GET /imports`` and cancel it at ``DELETE
/imports/{id}``). Streamed bodies flow through a bounded :class:`~..pfs.imports.StreamPipe` to the
import running in the long pool: the event loop stops reading the socket while the pipe is full,
so memory stays flat whatever the upload's size. A client that disconnects or a cancel aborts the
open commit: nothing lands.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import tornado.web

from ..pfs import InvalidArgument
from ..pfs.errors import Cancelled, PfsError
from ..pfs.imports import (
    ImportProgress,
    StreamPipe,
    import_items,
    local_files,
    local_items,
    multipart_items,
    tar_items,
)
from .args import branch_arg, check_fields, repo_arg
from .base import MAX_JSON_BODY, ApiError, PachlsHandler, json_errors

IMPORT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
TAR_TYPES = ("application/x-tar", "application/tar", "application/gzip", "application/x-gzip",
             "application/x-gtar", "application/octet-stream")
#: A streamed upload may be as big as the data; the JSON variant stays under MAX_JSON_BODY.
MAX_UPLOAD = 1 << 40


def import_id_arg(raw: str | None) -> str | None:
    if raw is not None and not IMPORT_ID.fullmatch(raw):
        raise InvalidArgument("'id' must be 1 to 64 letters, digits, '_' or '-'", parameter="id")
    return raw


def read_folder(sources: list[str], backend, repo: str, branch: str, dest: str, message: str, author: str,
                progress: ImportProgress, root: str) -> Any:
    """Import files under the Jupyter root, counted first (the panel shows how far along it is)."""
    total_files = total_bytes = 0
    for found in local_files(sources, dest, root=root):
        if progress.cancelled:
            raise Cancelled("the import was cancelled; nothing was committed")
        total_files, total_bytes = total_files + 1, total_bytes + found.size
    progress.total_files, progress.total_bytes = total_files, total_bytes
    return import_items(backend, repo, branch, local_items(local_files(sources, dest, root=root)),
                        message=message, author=author, progress=progress)


@tornado.web.stream_request_body
class ImportHandler(PachlsHandler):
    """``POST /pachls/api/repos/{repo}/branches/{branch}/import``: files into ONE commit."""

    _pipe: StreamPipe | None = None
    _job: asyncio.Future | None = None
    _progress: ImportProgress | None = None
    _import_id: str | None = None
    _json: bytearray | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()  # authentication and XSRF first: nothing is read before them
        if self.request.method != "POST":
            return
        if not self.current_user:
            raise tornado.web.HTTPError(403)
        try:
            self._start()
        except PfsError as exc:
            raise ApiError.from_pfs(exc) from exc

    def _start(self) -> None:
        repo, branch = repo_arg(self.path_args[0]), branch_arg(self.path_args[1])
        dest = self.path_query("dest")
        message = self.query("message") or ""
        import_id = import_id_arg(self.query("id"))
        kind = (self.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        progress = ImportProgress(repo=repo, branch=branch)
        self._progress, self._import_id = progress, import_id
        if kind == "application/json":
            self._json = bytearray()
            self._args = (repo, branch, dest, message)
        elif kind in TAR_TYPES or kind == "multipart/form-data":
            if kind == "multipart/form-data":
                boundary = self._boundary()
            backend, author = self.backend, self.user_name
            self.request.connection.set_max_body_size(MAX_UPLOAD)
            pipe = self._pipe = StreamPipe()
            progress.on_cancel = lambda: pipe.fail(Cancelled("the import was cancelled; nothing was committed"))

            def run() -> Any:
                try:
                    items = (multipart_items(pipe, boundary, dest) if kind == "multipart/form-data"
                             else tar_items(pipe, dest))
                    return import_items(backend, repo, branch, items, message=message, author=author,
                                        progress=progress)
                finally:
                    pipe.close_reader()

            self._register()
            self._job = asyncio.ensure_future(self.call_long(run))
            self._job.add_done_callback(self._job_ended)
        else:
            raise InvalidArgument(
                f"Content-Type {kind or '(none)'!r} cannot be imported: send a tar (application/x-tar), "
                "multipart/form-data, or JSON naming folders under the Jupyter root", content_type=kind)

    def _job_ended(self, _job: asyncio.Future) -> None:
        # a job refused at once (the long pool busy) must still release a waiting body; a client
        # that disconnected gets no on_finish, so the import leaves the registry here
        if self._pipe is not None:
            self._pipe.close_reader()
        self._unregister()

    def _boundary(self) -> str:
        from python_multipart.multipart import parse_options_header

        _kind, options = parse_options_header(self.request.headers.get("Content-Type", ""))
        boundary = options.get(b"boundary")
        if not boundary:
            raise InvalidArgument("multipart/form-data without a boundary")
        return boundary.decode("latin-1")

    def _register(self) -> None:
        if self._import_id is not None:
            self.state.imports.start(self._import_id, self._progress)

    def _unregister(self) -> None:
        if self._import_id is not None and self._progress is not None:
            self.state.imports.end(self._import_id, self._progress)

    async def data_received(self, chunk: bytes) -> None:
        if self._json is not None:
            self._json += chunk
            if len(self._json) > MAX_JSON_BODY:
                raise ApiError(413, "payload_too_large", f"A JSON import body is limited to {MAX_JSON_BODY} bytes.",
                               {"limit": MAX_JSON_BODY})
            return
        pipe = self._pipe
        if pipe is None:
            return
        pipe.feed(chunk)
        if pipe.full():  # stop reading the socket until the import has taken half of what waits
            loop = asyncio.get_running_loop()
            room = loop.create_future()
            pipe.when_drained(lambda: loop.call_soon_threadsafe(lambda: room.done() or room.set_result(None)))
            await room

    def on_connection_close(self) -> None:
        # A client gone mid-import (closed tab, aborted request, killed notebook): nothing may land.
        if self._pipe is not None:
            self._pipe.fail(Cancelled("the upload was cut off before its end; nothing was committed"))
        if self._progress is not None:
            self._progress.cancel()

    def on_finish(self) -> None:
        self._unregister()

    @tornado.web.authenticated
    @json_errors
    async def post(self, _repo: str, _branch: str) -> None:
        if self._json is not None:
            result = await self._import_folder()
        else:
            assert self._pipe is not None and self._job is not None
            self._pipe.finish()
            result = await self._job
        self.send_json(result.to_json(), 201)

    async def _import_folder(self) -> Any:
        self.request.body = bytes(self._json or b"")
        body = self.json_body()
        check_fields(body, ("source",))
        sources = body["source"]
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s for s in sources):
            raise InvalidArgument("'source' must be a folder or file under the Jupyter root, or a list of them",
                                  field="source")
        repo, branch, dest, message = self._args
        backend, author, progress = self.backend, self.user_name, self._progress
        root = self.contents_manager.root_dir
        self._register()
        try:
            return await self.call_long(read_folder, sources, backend, repo, branch, dest, message, author,
                                        progress, root)
        finally:
            self._unregister()


class ImportsHandler(PachlsHandler):
    """``GET /pachls/api/imports``: the imports running, by id, with their progress."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        running = self.state.imports.all()
        self.send_json({"imports": [{"id": key, **progress.to_json()} for key, progress in sorted(running.items())]})


class ImportCancelHandler(PachlsHandler):
    """``GET /pachls/api/imports/{id}``: one import's progress; ``DELETE``: cancel it (nothing lands)."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, import_id: str) -> None:
        self.send_json({"id": import_id, **self.state.imports.get(import_id_arg(import_id)).to_json()})

    @tornado.web.authenticated
    @json_errors
    async def delete(self, import_id: str) -> None:
        self.state.imports.get(import_id_arg(import_id)).cancel()
        self.send_empty()
