"""A directory of a commit (or the whole repo, or one file) as one tar or zip stream.

What downloads (``GET .../commits/{commit}/archive``), ``Client.get`` and ``jupyter pachls serve``'s
``GetFileTAR`` send. The entries come from ``Backend.read_tree`` (one pass over the store, or one
``GetFileTAR`` on a cluster) and leave as they are read: the stream is cut into :data:`CHUNK`-sized
pieces, so memory stays flat however big the tree, and nothing is buffered whole.

Every entry carries the commit's finishing time and fixed modes (0644 files, 0755 directories), so
the same commit and path give the same bytes each time. Tar entries use the POSIX (pax) format: long
and non-ASCII names are kept exactly. Zip entries are stored (most data is already compressed) with
zip64 where a file needs it.
"""

from __future__ import annotations

import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .backend import Backend
from .errors import Conflict, InvalidArgument, PfsError
from .model import Commit, FileInfo

#: Bytes per piece of the stream (what a handler writes and flushes at once).
CHUNK = 1 << 20
FORMATS = {"tar": "application/x-tar", "zip": "application/zip"}
FILE_MODE, DIR_MODE = 0o644, 0o755

#: An entry to archive: its name in the archive, what it is, and its bytes (None for a directory).
Entry = tuple[str, FileInfo, "Iterator[bytes] | None"]


def archive_format(name: object) -> str:
    """``tar`` or ``zip``, exactly as documented; InvalidArgument otherwise."""
    if isinstance(name, str) and name in FORMATS:
        return name
    raise InvalidArgument(f"archive format must be one of {', '.join(FORMATS)}, not {str(name)[:20]!r}",
                          format=str(name)[:20])


@dataclass(frozen=True)
class Archive:
    """A download of ``repo@commit:path``: ``top`` is the one directory (or file) its entries sit in."""

    repo: str
    commit: Commit
    path: str
    top: str

    def filename(self, fmt: str) -> str:
        return f"{self.top}.{fmt}"


def plan_archive(backend: Backend, repo: str, ref: str, path: str) -> Archive:
    """Resolve ``ref`` once (a branch that moves during the download changes nothing) and name the
    archive's top entry: the last segment of ``path``, or ``<repo>-<commit[:12]>`` for the whole repo.
    NotFound for a missing path, Conflict for an open commit."""
    commit = backend.inspect_commit(repo, ref)
    if commit.finished is None:
        raise Conflict(f"{repo}@{commit.id} is still open; download a finished commit", commit=commit.id)
    info = backend.inspect_file(repo, commit.id, path)
    name = info.path.rstrip("/").rsplit("/", 1)[-1]
    return Archive(repo=repo, commit=commit, path=info.path, top=name or f"{repo.replace('/', '-')}-{commit.id[:12]}")


def archive_entries(backend: Backend, archive: Archive) -> Iterator[Entry]:
    """The entries of ``archive``, named ``<top>/<path below archive.path>``."""
    base = archive.path.rstrip("/")
    if not base:  # the whole repo: its entries sit in one directory named after it
        yield archive.top + "/", FileInfo(path="/", type="dir", size=0, committed=archive.commit.id), None
    for info, chunks in backend.read_tree(archive.repo, archive.commit.id, archive.path):
        below = info.path.rstrip("/")[len(base):].lstrip("/")
        name = f"{archive.top}/{below}" if below else archive.top
        yield (name + "/" if info.is_dir else name), info, chunks


def stream_archive(fmt: str, entries: Iterable[Entry], mtime: float | None = None) -> Iterator[bytes]:
    """The archive (``tar`` or ``zip``) of ``entries``, in pieces of about :data:`CHUNK` bytes."""
    when = time.time() if mtime is None else mtime
    return (tar_stream if archive_format(fmt) == "tar" else zip_stream)(entries, when)


class _Pieces:
    """Collects what is written and hands it out in CHUNK-sized pieces (a non-seekable file for zipfile)."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.written = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.written

    def write(self, data) -> int:
        self.pending += data
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def full(self) -> Iterator[bytes]:
        if len(self.pending) >= CHUNK:
            out = bytes(self.pending)
            self.pending.clear()
            yield out

    def rest(self) -> Iterator[bytes]:
        if self.pending:
            out = bytes(self.pending)
            self.pending.clear()
            yield out


def _copy(info: FileInfo, chunks: Iterator[bytes], write: Callable[[bytes], object]) -> Iterator[None]:
    """Write a file's chunks, yielding after each so the caller can hand out full pieces; the bytes
    must add up to the size the header announced (else the archive would be corrupt from there on)."""
    done = 0
    try:
        for chunk in chunks:
            done += len(chunk)
            if done > info.size:
                break
            write(chunk)
            yield
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    if done != info.size:
        raise _broken(info, done)


def _broken(info: FileInfo, done: int) -> PfsError:
    # a blob that does not hold what its entry says (a damaged store: fsck names it); the stream is
    # cut here, since what follows would not be where the header said
    return PfsError(f"{info.path} holds {done} bytes where {info.size} are listed; the archive stops here",
                    path=info.path)


def tar_header(name: str, size: int, mtime: int, is_dir: bool) -> bytes:
    """The header of one entry, byte for byte what ``tarfile`` writes in the pax format; the common case
    (a short ASCII name) is filled into a template: ``tarfile`` building it took most of the time an
    archive of small files costs."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 100 or not raw.isascii() or size >= 0o77777777777:
        header = tarfile.TarInfo(name)
        header.mtime = mtime
        if is_dir:
            header.type, header.mode = tarfile.DIRTYPE, DIR_MODE
        else:
            header.size, header.mode = size, FILE_MODE
        return header.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    template, template_sum = _USTAR_DIR if is_dir else _USTAR_FILE
    block = bytearray(template)
    size_field, time_field = b"%011o\0" % size, b"%011o\0" % mtime
    block[0:len(raw)] = raw
    block[124:136] = size_field
    block[136:148] = time_field
    # the checksum sums the header with its own field as spaces: the template's sum (size and time 0)
    # plus what the name, size and time add
    block[148:156] = b"%06o\0 " % (template_sum + sum(raw) + sum(size_field) + sum(time_field) - _ZERO_FIELDS)
    return bytes(block)


def _ustar_template(mode: int, kind: bytes) -> tuple[bytes, int]:
    """A ustar header with no name, size 0 and time 0, its checksum field blank (spaces), and its sum."""
    header = tarfile.TarInfo("")
    header.mode, header.type = mode, kind
    block = bytearray(header.tobuf(tarfile.USTAR_FORMAT))
    block[0:100] = bytes(100)  # tarfile names a directory "/": the name is the entry's own
    block[148:156] = b" " * 8
    return bytes(block), sum(block)


_USTAR_FILE = _ustar_template(FILE_MODE, tarfile.REGTYPE)
_USTAR_DIR = _ustar_template(DIR_MODE, tarfile.DIRTYPE)
_ZERO_FIELDS = 2 * sum(b"%011o\0" % 0)  # what the template's size and time fields add to its sum


def tar_stream(entries: Iterable[Entry], mtime: float) -> Iterator[bytes]:
    """A pax tar of ``entries`` (names as given; directories end with ``/``). The loop is written out
    (no helper per file): per small file it is most of what an archive costs."""
    pending = bytearray()
    when = int(mtime)
    for name, info, chunks in entries:
        if chunks is None:
            pending += tar_header(name, 0, when, True)
            continue
        size = info.size
        pending += tar_header(name, size, when, False)
        done = 0
        try:
            for chunk in chunks:
                done += len(chunk)
                if done > size:
                    break
                pending += chunk
                if len(pending) >= CHUNK:
                    yield bytes(pending)
                    pending.clear()
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if done != size:
            raise _broken(info, done)
        if size % tarfile.BLOCKSIZE:
            pending += tarfile.NUL * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)
        if len(pending) >= CHUNK:
            yield bytes(pending)
            pending.clear()
    pending += tarfile.NUL * (2 * tarfile.BLOCKSIZE)  # the end-of-archive marker
    yield bytes(pending)


def zip_stream(entries: Iterable[Entry], mtime: float) -> Iterator[bytes]:
    """A zip of ``entries``, stored (no compression), written for a non-seekable stream (sizes and
    checksums follow each file in a data descriptor)."""
    out = _Pieces()
    stamp = time.localtime(max(mtime, 315532800))[:6]  # zip dates start in 1980
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, info, chunks in entries:
            member = zipfile.ZipInfo(name, stamp)
            member.external_attr = ((DIR_MODE | 0o40000) if info.is_dir else (FILE_MODE | 0o100000)) << 16
            if info.is_dir:
                member.external_attr |= 0x10  # MS-DOS directory flag
                member.file_size = member.compress_size = member.CRC = 0
                archive.mkdir(member)
            else:
                member.file_size = info.size
                with archive.open(member, "w", force_zip64=info.size >= zipfile.ZIP64_LIMIT) as target:
                    for _ in _copy(info, chunks, target.write):
                        yield from out.full()
            yield from out.full()
    yield from out.rest()


__all__ = ["Archive", "CHUNK", "FORMATS", "archive_entries", "archive_format", "plan_archive",
           "stream_archive", "tar_stream", "zip_stream"]
