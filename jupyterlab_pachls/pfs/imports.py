"""Import: many files into ONE commit on a branch, from a tar stream or from local paths.

Both sources become an iterator of ``(repo path, content)`` that ``Backend.commit`` consumes one
item at a time, so a big file is streamed (never held whole) and memory stays flat however many
files arrive. Anything that goes wrong midway (a bad name, a cut stream, a cancel) aborts the
open commit: an import lands whole or not at all.

- :func:`tar_items`: the members of a tar stream (``r|*``: plain or compressed), read in order.
  Only regular files and directories are taken; links and devices are refused (a link could point
  anywhere), names are confined below ``dest`` by ``normalize_path``.
- :func:`local_items`: files, directories (recursively, keeping the directory's own name, as
  ``cp -r`` does) and globs on this machine. ``root`` confines every source and every symlink
  target below it (the server reading a folder under the Jupyter root); without it (a notebook
  sending its own files) symlinked files are read and symlinked directories are not descended.
- :func:`import_items`: the one commit, counting into an :class:`ImportProgress` that another
  thread may read (the panel's progress) or cancel.
"""

from __future__ import annotations

import glob as globmod
import os
import stat
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from .address import normalize_path
from .backend import Backend, Content
from .errors import AlreadyExists, Cancelled, InvalidArgument, InvalidPath, NotFound
from .model import Commit

#: Files up to this size are read whole and handed over as bytes (the store's fast path for small
#: blobs); bigger ones are handed over as a file object and streamed.
READ_WHOLE = 1 << 20


def join_dest(dest: str, relative: str) -> str:
    """``dest`` + a relative name (``a/b.png``, ``./a/b.png``), refused when it would leave ``dest``."""
    name = (relative[2:] if relative.startswith("./") else relative).lstrip("/")
    try:
        path = normalize_path(f"{dest.rstrip('/')}/{name}", allow_root=False)
    except InvalidPath as exc:
        raise InvalidPath(f"cannot import {relative[:200]!r}: {exc.message}", path=relative[:200]) from None
    return path


# -- tar streams ---------------------------------------------------------------------------------
def tar_items(stream: IO[bytes], dest: str = "/") -> Iterator[tuple[str, Content]]:
    """The regular files of the tar ``stream`` as ``(dest/name, content)``, in stream order.

    Each item must be consumed before the next is asked for (the stream is read once, forward).
    """
    dest = normalize_path(dest)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                if member.isdir():
                    join_dest(dest, member.name + "/x")  # a bad directory name fails here, not later
                    continue
                if not member.isreg():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise InvalidArgument(f"cannot import {member.name[:200]!r}: a {kind}; only regular files "
                                          "and directories are imported", path=member.name[:200])
                path = join_dest(dest, member.name)
                reader = archive.extractfile(member)
                assert reader is not None  # a regular member always has one
                yield path, (reader.read() if member.size <= READ_WHOLE else reader)
        # The archive's end marker is not the upload's end: read on, so nothing lands before the
        # whole body arrived (a client cut off after the marker must still leave no commit).
        while stream.read(1 << 16):
            pass
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"the upload is not a complete tar archive: {exc}") from None


def multipart_items(stream: IO[bytes], boundary: str, dest: str = "/", *,
                    chunk: int = 256 << 10) -> Iterator[tuple[str, Content]]:
    """The file parts of a ``multipart/form-data`` stream (a browser's upload) as ``(dest/filename,
    content)``. A part's filename may hold a relative path (``cats/001.png``: a dropped folder). Each
    part is spooled (in memory up to :data:`READ_WHOLE`, then in a temporary file) until it ends, so
    memory stays flat; parts without a filename (form fields) are ignored."""
    from python_multipart.multipart import MultipartParseError, MultipartParser, MultipartState, parse_options_header

    dest = normalize_path(dest)
    done: deque[tuple[str, Content]] = deque()
    part: dict = {}

    def on_part_begin() -> None:
        part.clear()
        part["headers"], part["field"], part["value"] = {}, bytearray(), bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part["value"] += data[start:end]

    def on_header_end() -> None:
        part["headers"][bytes(part["field"]).lower()] = bytes(part["value"])
        part["field"], part["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        _kind, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        filename = options.get(b"filename")
        part["path"] = join_dest(dest, filename.decode("utf-8", "surrogateescape")) if filename else None
        part["body"] = tempfile.SpooledTemporaryFile(max_size=READ_WHOLE) if filename else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.get("body") is not None:
            part["body"].write(data[start:end])

    def on_part_end() -> None:
        body = part.get("body")
        if body is None:
            return
        if body.tell() <= READ_WHOLE:
            body.seek(0)
            done.append((part["path"], body.read()))
            body.close()
        else:
            body.seek(0)
            done.append((part["path"], body))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        while True:
            data = stream.read(chunk)
            if not data:
                break
            parser.write(data)
            while done:
                path, content = done.popleft()
                yield path, content
                if not isinstance(content, bytes):
                    content.close()  # type: ignore[union-attr]
        if parser.state != MultipartState.END:
            raise InvalidArgument("the upload ended before its closing boundary (cut off?); nothing was committed")
    except MultipartParseError as exc:
        raise InvalidArgument(f"the upload is not valid multipart/form-data: {exc}") from None
    finally:
        body = part.get("body")
        if body is not None:
            body.close()


class StreamPipe:
    """Bytes handed from one thread (an HTTP body arriving) to another (the import reading a tar).

    The writer never blocks: :meth:`feed` buffers, :meth:`full` says when to stop feeding and
    :meth:`when_drained` calls back (from the reader's thread) once there is room again, so an event
    loop can wait without holding a thread. The reader blocks in :meth:`read` until bytes, the end
    (:meth:`finish`) or a failure (:meth:`fail`, raised to the reader) arrive.
    """

    def __init__(self, limit: int = 8 << 20) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._error: BaseException | None = None
        self._reader_gone = False
        self._cond = threading.Condition()
        self._drained: list[Callable[[], None]] = []

    def feed(self, chunk: bytes) -> None:
        with self._cond:
            if self._reader_gone or self._done:
                return  # nobody reads any more: the rest of the body is dropped
            self._chunks.append(bytes(chunk))
            self._size += len(chunk)
            self._cond.notify_all()

    def full(self) -> bool:
        with self._cond:
            return self._size >= self.limit and not self._reader_gone

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the buffer is below half its limit (now, if it already is)."""
        with self._cond:
            if self._size >= self.limit // 2 and not self._reader_gone:
                self._drained.append(callback)
                return
        callback()

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def close_reader(self) -> None:
        """The reader stopped (done or failed): wake a waiting writer, drop what is buffered."""
        with self._cond:
            self._reader_gone = True
            self._chunks.clear()
            self._size = 0
            callbacks, self._drained = self._drained, []
        for callback in callbacks:
            callback()

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            while not self._chunks and not self._done and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            if not self._chunks:
                return b""
            out = bytearray()
            while self._chunks and (size < 0 or len(out) < size):
                chunk = self._chunks.popleft()
                if 0 <= size < len(out) + len(chunk):
                    cut = size - len(out)
                    self._chunks.appendleft(chunk[cut:])
                    chunk = chunk[:cut]
                out += chunk
                self._size -= len(chunk)
            callbacks = []
            if self._size < self.limit // 2:
                callbacks, self._drained = self._drained, []
        for callback in callbacks:
            callback()
        return bytes(out)


# -- local paths -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalFile:
    """One file to import: where it goes in the repo, where it is here, its size when listed."""

    path: str
    source: str
    size: int


def _confined(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _expand(source: str, root: str | None) -> list[str]:
    """A source as given: a path, or a glob when it has glob characters (sorted matches)."""
    full = os.path.join(root, source) if root is not None else os.path.expanduser(source)
    if globmod.has_magic(source):
        matches = sorted(globmod.glob(full))
        if not matches:
            raise NotFound(f"{source!r} matches nothing", source=source)
        return matches
    if not os.path.lexists(full):
        raise NotFound(f"{source!r} does not exist", source=source)
    return [full]


def local_files(sources: Iterable[str], dest: str = "/", *, root: str | None = None) -> Iterator[LocalFile]:
    """Every file the ``sources`` name, placed below ``dest`` as ``cp -r SOURCES DEST`` would.

    ``root``: every source is relative to it and everything read must resolve below it (symlinks
    pointing out are refused, so a request can never read outside the folder it was given).
    """
    dest = normalize_path(dest)
    real_root = os.path.realpath(root) if root is not None else None
    sources = list(sources)
    if not sources:
        raise InvalidArgument("name at least one file, directory or glob to import")
    for source in sources:
        if not isinstance(source, str) or not source:
            raise InvalidArgument("each source must be a non-empty path", source=repr(source)[:80])
        if real_root is not None and (os.path.isabs(source) or ".." in source.replace("\\", "/").split("/")):
            raise InvalidPath(f"{source!r} must be a path inside the Jupyter root, without '..'", path=source[:200])
        for found in _expand(source, real_root):
            name = os.path.basename(os.path.normpath(found))
            yield from _walk(found, join_dest(dest, name) if name not in ("", ".") else dest, real_root)


def _walk(found: str, target: str, real_root: str | None) -> Iterator[LocalFile]:
    info = _checked_stat(found, real_root)
    if info is None:
        return
    if stat.S_ISREG(info.st_mode):
        yield LocalFile(target, found, info.st_size)
        return
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidArgument(f"cannot import {found!r}: not a regular file or a directory", source=found)
    with os.scandir(found) as entries:
        names = sorted(entries, key=lambda e: e.name)
    for entry in names:
        child = join_dest(target, entry.name)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, child, real_root)
        elif entry.is_file(follow_symlinks=False):
            yield LocalFile(child, entry.path, entry.stat(follow_symlinks=False).st_size)
        elif entry.is_symlink():
            info = _checked_stat(entry.path, real_root, inside_walk=True)
            if info is not None and stat.S_ISREG(info.st_mode):
                yield LocalFile(child, entry.path, info.st_size)
        # sockets, fifos and devices inside a tree are not data: left out


def _checked_stat(path: str, real_root: str | None, *, inside_walk: bool = False) -> os.stat_result | None:
    """The stat of what ``path`` leads to; None for a symlinked directory met inside a tree (not
    descended: it may loop) and for a dangling link there; refused when it resolves outside ``root``."""
    if real_root is not None and not _confined(os.path.realpath(path), real_root):
        raise InvalidPath(f"{path!r} leads outside the Jupyter root", path=path[:200])
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if inside_walk:
            return None
        raise NotFound(f"{path!r} does not exist (a dangling link?)", source=path) from None
    if inside_walk and stat.S_ISDIR(info.st_mode):
        return None
    return info


def local_items(files: Iterable[LocalFile]) -> Iterator[tuple[str, Content]]:
    """The content of each local file: bytes when small, the open file when big (streamed)."""
    for item in files:
        if item.size <= READ_WHOLE:
            with open(item.source, "rb") as source:
                yield item.path, source.read()
        else:
            with open(item.source, "rb") as source:
                yield item.path, source


def tar_stream(files: Iterable[LocalFile], *, on_file: Callable[[int], None] | None = None,
               batch: int = 256 << 10) -> Iterator[bytes]:
    """A tar of ``files`` (each named by its repo path), made while it is sent: headers and bytes in
    chunks of about ``batch``, a big file read piece by piece (memory stays flat). PAX headers carry
    long and non-ASCII names."""
    out = bytearray()
    for item in files:
        with open(item.source, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            info = tarfile.TarInfo(item.path.lstrip("/"))
            info.size, info.mode, info.mtime = size, 0o644, int(time.time())
            out += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            remaining = size
            while remaining:
                data = source.read(min(batch, remaining))
                if not data:
                    raise InvalidArgument(f"{item.source!r} shrank while it was sent", source=item.source)
                out += data
                remaining -= len(data)
                if len(out) >= batch:
                    yield bytes(out)
                    out.clear()
            out += b"\0" * (-size % tarfile.BLOCKSIZE)
        if on_file is not None:
            on_file(size)
    out += b"\0" * (2 * tarfile.BLOCKSIZE)
    yield bytes(out)


# -- the one commit ------------------------------------------------------------------------------
@dataclass
class ImportProgress:
    """What an import has done so far; read by other threads, ``cancel()`` from any of them."""

    repo: str = ""
    branch: str = ""
    total_files: int | None = None
    total_bytes: int | None = None
    files: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    state: str = "running"  # running, committing, done, failed, cancelled
    commit: str | None = None
    on_file: Callable[[int], None] | None = None  # called with each file's size (a progress bar)
    on_cancel: Callable[[], None] | None = None  # wakes a reader waiting for bytes that will not come
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._cancelled.set()
        if self.on_cancel is not None:
            self.on_cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def to_json(self) -> dict:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {"repo": self.repo, "branch": self.branch, "state": self.state, "files": self.files,
                "bytes": self.bytes, "total_files": self.total_files, "total_bytes": self.total_bytes,
                "seconds": round(elapsed, 3), "bytes_per_second": round(self.bytes / elapsed, 1),
                "commit": self.commit}


@dataclass(frozen=True)
class ImportResult:
    commit: Commit
    files: int
    bytes: int

    def to_json(self) -> dict:
        return {"commit": self.commit.to_json(), "files": self.files, "bytes": self.bytes}


def _content_size(content: Content) -> int:
    if isinstance(content, (bytes, bytearray, memoryview)):
        return len(content)
    size = getattr(getattr(content, "raw", None), "size", None)  # a tar member's reader knows its size
    if isinstance(size, int):
        return size
    try:
        return os.fstat(content.fileno()).st_size  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return 0


def import_items(backend: Backend, repo: str, branch: str, items: Iterable[tuple[str, Content]], *,
                 message: str = "", author: str = "", progress: ImportProgress | None = None) -> ImportResult:
    """Land ``items`` as ONE commit on ``repo@branch`` (created if missing), or nothing on any error,
    on a cancel (``Cancelled``) and when there is nothing to import."""
    progress = progress or ImportProgress(repo=repo, branch=branch)
    backend.inspect_repo(repo)  # a missing repo is said before a branch is made for it

    def counted() -> Iterator[tuple[str, Content]]:
        for path, content in items:
            if progress.cancelled:
                raise Cancelled("the import was cancelled; nothing was committed")
            size = _content_size(content)
            yield path, content
            progress.files += 1
            progress.bytes += size
            if progress.on_file is not None:
                progress.on_file(size)
        if progress.cancelled:
            raise Cancelled("the import was cancelled; nothing was committed")
        if progress.files == 0:
            raise InvalidArgument("nothing to import: no files found; nothing was committed")
        progress.state = "committing"

    try:
        default = f"Import {progress.total_files} files" if progress.total_files else "Import"
        with backend.commit(repo, branch, message=message or default, author=author) as writer:
            writer.put_files(counted())
    except Cancelled:
        progress.state = "cancelled"
        raise
    except BaseException:
        progress.state = "failed"
        raise
    assert writer.finished is not None
    progress.state, progress.commit = "done", writer.finished.id
    return ImportResult(writer.finished, progress.files, progress.bytes)


class ImportRegistry:
    """The imports a server runs, by the id their client chose, for progress and cancel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, ImportProgress] = {}

    def start(self, import_id: str, progress: ImportProgress) -> None:
        with self._lock:
            if import_id in self._running:
                raise AlreadyExists(f"an import with id {import_id!r} is running", id=import_id)
            self._running[import_id] = progress

    def end(self, import_id: str, progress: ImportProgress) -> None:
        with self._lock:
            if self._running.get(import_id) is progress:
                del self._running[import_id]

    def get(self, import_id: str) -> ImportProgress:
        with self._lock:
            found = self._running.get(import_id)
        if found is None:
            raise NotFound(f"no import with id {import_id!r} is running", id=import_id)
        return found

    def all(self) -> dict[str, ImportProgress]:
        with self._lock:
            return dict(self._running)
