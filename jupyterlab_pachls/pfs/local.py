"""The embedded store: SQLite metadata (WAL) + a content-addressed blob directory.

Layout of a store directory::

    meta.sqlite          repos, branches, commits, file entries, staged changes, and the
                         contents of small files (table ``inline_blobs``, by sha256)
    blobs/ab/abcdef...   contents of bigger files, named by sha256, plain files (read straight from disk)
    tmp/                 blobs being written (renamed into blobs/ when complete)

Small and big contents. A file of at most ``INLINE_MAX`` bytes is kept in the database, written
in the same transaction as the staged row that refers to it: creating one file per small blob
cost more than everything else a commit of small files does (measured with
``bench/inline_blobs.py``, figures in docs/performance.md). Bigger contents are blob files, read
straight from disk. Reads look in the database first, then on disk, so a store written before
small contents moved into the database (every blob a file) reads the same; nothing is migrated.

How trees are stored. Every finished commit gets a ``seq`` and belongs to a
*line*: a chain of commits each of which is the parent of the next. A commit
whose parent is the tip of a line extends that line; any other commit (after a
rollback, or a second branch off an older commit) starts a new line that
records where it forked. ``entries`` holds, per line, one row for every path a
commit changed (file, directory summary or tombstone). The state of a path at
commit C is the newest row for it with ``seq <= C.seq`` in C's line, else in
the line it forked from (up to the fork point), and so on. So:

- finishing a commit writes O(changed files + their directories) rows;
- listing a directory page is an index range scan of O(page) rows;
- reading an old commit costs the same as reading the head.

Directories are explicit rows carrying the number of direct children, the
number of files and bytes below them, maintained incrementally on finish.

Crash safety: blob files are written to ``tmp/`` and renamed into place before any
row refers to them; a small content lands with its staged row in one transaction;
a commit lands in a single SQLite transaction. A process killed at any instant
leaves every commit whole or absent; at worst a blob nobody refers to, which
``fsck`` reports and ``gc`` removes.

Out of space: a blob or a row that does not fit (ENOSPC/EDQUOT, SQLITE_FULL) is an ``Unavailable``
with ``details["reason"] == "disk_full"``; the transaction is rolled back and a partly written blob
removed, so nothing half-written stays and the same call works once space is freed.

Concurrency: one SQLite connection per thread; every write runs in a
``BEGIN IMMEDIATE`` transaction, so finishing commits is serialised across
threads and processes and a branch head only moves under that lock.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import io
import itertools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cachetools import LRUCache

from .address import DEFAULT_PROJECT, is_commit_id, normalize_path, parent_dir, parse_ref, parse_repo, validate_name
from .backend import (
    DEFAULT_PAGE,
    Backend,
    Content,
    check_commit_fields,
    check_history_limit,
    check_metadata,
    check_page,
    check_range,
)
from .errors import AlreadyExists, Conflict, InvalidArgument, InvalidPath, NotFound, PfsError, Unavailable
from .model import Branch, BranchMove, Commit, FileChange, FileInfo, FilePage, Provenance, Repo, from_timestamp

TOMBSTONE, FILE, DIR = 0, 1, 2
CHUNK = 1 << 20
# Contents up to this size live in the database: bench/inline_blobs.py found the database cheaper than
# files up to 48 KiB and dearer from 64 KiB (commit + reads); at 32 KiB it still costs half.
INLINE_MAX = 32 << 10
SMALL_BLOB = 64 << 10  # blob files up to this size are written in place; larger ones go through tmp/ and a rename
GC_REFRESH_SECONDS = 600
FLUSH_ROWS = 4096  # staged rows buffered in memory before they are written
FLUSH_BYTES = 16 << 20  # ... or small contents buffered with them
BUSY_TIMEOUT_MS = 60_000
# Commits are kept by id as they land, so these caches fill with a server's commits: their limits are
# what the panel and histories read again (recent heads and pages), small enough that a long-running
# server reaches them early (a commit read again after eviction is one indexed row).
COMMIT_CACHE = 2_000  # finished commits kept as values (least recently used dropped first): ~1.3 KiB each
CHAIN_CACHE = 2_000  # chains of the commits read most recently
# SQLite's page caches: every worker thread has its own connection (and cache), so one budget for all
# of them (SQLite's process-wide soft heap limit) keeps the server's memory flat as the database grows;
# pages beyond it are read again from the OS page cache.
PAGE_CACHE_KIB = 2048  # per connection (SQLite's default)
SQLITE_HEAP_LIMIT = 16 << 20  # all connections of the process together
TREE_BATCH = 200  # entries of a directory read_tree takes at once (their small contents: one query)

SCHEMA = """
CREATE TABLE IF NOT EXISTS repos (
    id INTEGER PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL, created REAL NOT NULL, UNIQUE (project, name));
CREATE TABLE IF NOT EXISTS branches (
    repo_id INTEGER NOT NULL, name TEXT NOT NULL, head TEXT,
    PRIMARY KEY (repo_id, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
    id TEXT PRIMARY KEY, repo_id INTEGER NOT NULL, branch TEXT, parent TEXT,
    seq INTEGER, line INTEGER, message TEXT NOT NULL, author TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, origin TEXT NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0, n_files INTEGER NOT NULL DEFAULT 0,
    provenance TEXT NOT NULL, metadata TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS commits_by_repo ON commits (repo_id, seq);
CREATE INDEX IF NOT EXISTS commits_by_seq ON commits (seq);
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL, tip_seq INTEGER NOT NULL,
    chain TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    line INTEGER NOT NULL, dir TEXT NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL,
    kind INTEGER NOT NULL, blob TEXT, size INTEGER NOT NULL, files INTEGER NOT NULL,
    children INTEGER NOT NULL,
    PRIMARY KEY (line, dir, path, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_commit ON entries (line, seq);
CREATE TABLE IF NOT EXISTS staged (
    commit_id TEXT NOT NULL, path TEXT NOT NULL, op INTEGER NOT NULL, blob TEXT,
    size INTEGER NOT NULL, PRIMARY KEY (commit_id, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inline_blobs (hash TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS annotations (
    kind TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (kind, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS branch_moves (
    id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL, branch TEXT NOT NULL,
    old_head TEXT, new_head TEXT NOT NULL, author TEXT NOT NULL, time REAL NOT NULL,
    reason TEXT NOT NULL);
"""

# staged ops
OP_DELETE, OP_PUT, OP_DELETE_TREE = 0, 1, 2
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the filesystem (or the quota) is full."""
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def out_of_space(root: Path, exc: BaseException) -> Unavailable:
    what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return Unavailable(f"the store at {root} is out of disk space ({what}); nothing was written; "
                       "free some space and try again",
                       reason="disk_full", path=str(root))


@dataclass(frozen=True)
class _Row:
    """The state of one path at one commit."""

    kind: int
    blob: str | None
    size: int
    files: int
    children: int


@dataclass
class _Pending:
    """What ``put_files`` wrote into an open commit and not yet into the database: staged rows by
    path, and the small contents they refer to (stored with them, in the same transaction)."""

    rows: dict[str, tuple] = field(default_factory=dict)
    inline: dict[str, bytes] = field(default_factory=dict)
    inline_bytes: int = 0


@dataclass
class FsckReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    commits: int = 0
    entries: int = 0
    blobs: int = 0
    unreferenced_blobs: int = 0

    def add(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def _hash_bytes(data) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, root: str | os.PathLike, *, inline_max: int = INLINE_MAX) -> None:
        """``inline_max``: contents up to this many bytes are kept in the database (0: every
        content is a blob file, as stores were written before)."""
        self.root = Path(root).expanduser().resolve()
        self.inline_max = inline_max
        self.blob_dir = self.root / "blobs"
        self._blob_root = str(self.blob_dir)
        self.tmp_dir = self.root / "tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp_dir.mkdir(exist_ok=True)
            self.blob_dir.mkdir(exist_ok=True)
            for i in range(256):
                (self.blob_dir / f"{i:02x}").mkdir(exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot open the store at {self.root}: {exc.strerror}", path=str(self.root)) from exc
        self._local = threading.local()  # each thread's connection (see _db and close)
        self._lock = threading.Lock()
        self._buffers: dict[str, _Pending] = {}  # commit id -> what put_files has not written yet
        # Both caches are LRUs shared by this backend's threads, so every access holds _cache_lock.
        # A chain is kept by (commit id, line, seq): a line id is reused once another process
        # deletes the newest line, but a commit's id, line and seq never change while it exists.
        self._cache_lock = threading.Lock()
        self._chains: LRUCache[tuple[str, int, int], list[tuple[int, int]]] = LRUCache(CHAIN_CACHE)
        self._commits: LRUCache[str, tuple[tuple, Commit]] = LRUCache(COMMIT_CACHE)  # id -> (row stamp, value)
        self._watch: sqlite3.Connection | None = None  # see change_token
        self._change = threading.Condition()  # notified when this process lands or drops a commit
        self._closed = False
        self._db().executescript(SCHEMA)

    # -- plumbing ----------------------------------------------------------------
    @property
    def address(self) -> str:
        return str(self.root)

    def _db(self) -> sqlite3.Connection:
        if self._closed:  # also for a thread that has its connection: close refuses every next step
            raise Unavailable("the store is closed")
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.root / "meta.sqlite", isolation_level=None, check_same_thread=False,
                                 timeout=BUSY_TIMEOUT_MS / 1000)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            db.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_LIMIT}")
            with self._lock:  # close may have run since the check above: then nobody else has this one
                if self._closed:
                    db.close()
                    raise Unavailable("the store is closed")
                self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection, root: Path) -> None:
            self.db = db
            self.root = root

        def __enter__(self) -> sqlite3.Connection:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if disk_full(exc):
                    raise out_of_space(self.root, exc) from exc
                raise
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                    return
                except sqlite3.OperationalError as failed:
                    self._rollback()
                    if disk_full(failed):
                        raise out_of_space(self.root, failed) from failed
                    raise
            self._rollback()
            if exc is not None and disk_full(exc):
                raise out_of_space(self.root, exc) from exc

        def _rollback(self) -> None:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def _write(self) -> "LocalBackend._Tx":
        return self._Tx(self._db(), self.root)

    def change_token(self) -> int:
        """A number that changes whenever anyone (another thread, another process) commits to the store.

        It is SQLite's ``data_version`` of a connection that never writes, so a caller can keep a
        listing while the token holds.
        """
        with self._lock:
            if self._watch is None:
                if self._closed:
                    raise Unavailable("the store is closed")
                self._watch = sqlite3.connect(self.root / "meta.sqlite", isolation_level=None,
                                              check_same_thread=False)
            return self._watch.execute("PRAGMA data_version").fetchone()[0]

    def _changed(self) -> None:
        with self._change:
            self._change.notify_all()

    def wait_for_change(self, token: int, timeout: float) -> int:
        """Block until the store changes from ``token`` (a ``change_token``) or ``timeout`` passes;
        return the current token. Commits of this process wake it at once, those of other
        processes within a poll interval."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.change_token()
            left = deadline - time.monotonic()
            if current != token or left <= 0 or self._closed:
                return current
            with self._change:
                self._change.wait(min(left, 0.25))

    def close(self) -> None:
        """Refuse every next step at once (``Unavailable``: the store is closed): a call running in
        another thread ends where it next asks for its connection (a transaction open then rolls back
        whole). Only this thread's own connection is closed here (each connection is used by its own
        thread only, see ``_dir_rows``): one closed while another thread steps a statement on it
        crashes the process (segfault). Each other is closed when the last call using it lets go of
        it, by the garbage collector (a connection and its statement cache refer to each other)."""
        own = getattr(self._local, "db", None)
        with self._lock:  # change_token uses the watch, and _db keeps a new connection, under this lock only
            self._closed = True
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            self._local = threading.local()
        self._changed()
        if own is not None:
            own.close()

    # -- blobs -------------------------------------------------------------------
    def blob_path(self, blob: str) -> Path:
        """Where the blob file of a big content is (small contents have none: see ``open_blob``)."""
        return Path(self._blob_file(blob))

    def _blob_file(self, blob: str) -> str:
        return f"{self._blob_root}/{blob[:2]}/{blob[2:]}"

    def _inline(self, blob: str, db: sqlite3.Connection | None = None) -> bytes | None:
        row = (db or self._db()).execute("SELECT data FROM inline_blobs WHERE hash=?", (blob,)).fetchone()
        return None if row is None else row[0]

    def _inline_many(self, blobs: list[str]) -> list[tuple[str, bytes]]:
        """(hash, bytes) of those of ``blobs`` kept in the database."""
        marks = ",".join("?" * len(blobs))
        return self._db().execute(f"SELECT hash, data FROM inline_blobs WHERE hash IN ({marks})", blobs).fetchall()

    def read_blob(self, blob: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The bytes of content ``blob`` (a ``FileInfo.hash``) from ``offset``: from the database
        when small, else read from its file as the caller iterates."""
        data = self._inline(blob)
        if data is None:
            return self._read_blob_file(self._blob_file(blob), offset, length)
        part = data[offset:] if length is None else data[offset:offset + length]
        return iter((part,) if part else ())

    def open_blob(self, blob: str) -> int:
        """A read-only descriptor of content ``blob`` (the caller closes it): the blob file itself
        when big; a small content's bytes in an anonymous memory file of their own (nothing written
        through it reaches the store)."""
        data = self._inline(blob)
        if data is None:
            return os.open(self._blob_file(blob), os.O_RDONLY | os.O_CLOEXEC)
        fd = os.memfd_create("pachls-blob", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.lseek(fd, 0, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _store_blob(self, content: Content) -> tuple[str, int, bytes | None]:
        """Store a content once per distinct content; return (hash, size, bytes). A small content
        is not written here: its bytes come back, for the caller to keep in the database."""
        try:
            return self._store_blob_unchecked(content)
        except OSError as exc:
            if disk_full(exc):
                raise out_of_space(self.root, exc) from exc
            raise

    def _store_blob_unchecked(self, content: Content) -> tuple[str, int, bytes | None]:
        if isinstance(content, (bytes, bytearray, memoryview)):
            if 0 < self.inline_max >= len(content):
                data = bytes(content)  # a copy: the caller may reuse its buffer before the row is written
                return _hash_bytes(data), len(data), data
            if len(content) > SMALL_BLOB:
                return (*self._store_stream(io.BytesIO(content)), None)
            blob = _hash_bytes(content)
            final = self._blob_file(blob)
            if not self._reuse_blob(final, len(content)):
                # Small blobs are written in place by whoever creates the file (O_EXCL): a writer
                # killed mid-write leaves a short file that nothing refers to yet. A file already
                # there with the wrong size (that leftover, or another writer still at it) is never
                # truncated under its writer: it is replaced whole, through tmp/ and a rename.
                try:
                    fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return (*self._store_stream(io.BytesIO(content)), None)
                try:
                    view = memoryview(content)
                    while view:
                        view = view[os.write(fd, view):]
                except OSError as exc:
                    if disk_full(exc):  # our own short file, if still in place: give its space back
                        try:
                            if os.stat(final).st_ino == os.fstat(fd).st_ino:
                                os.unlink(final)
                        except OSError:
                            pass
                    raise
                finally:
                    os.close(fd)
            return blob, len(content), None
        if isinstance(content, os.PathLike):
            with open(content, "rb") as source:
                return self._store_source(source)
        if hasattr(content, "read"):
            return self._store_source(content)
        raise InvalidArgument(f"file content must be bytes, a binary file or a path, not {type(content).__name__}")

    @staticmethod
    def _reuse_blob(final: str, size: int) -> bool:
        """True if the blob is already stored whole. An old blob's mtime is refreshed so ``gc``'s
        grace period protects it until the commit that reuses it lands."""
        try:
            stat = os.stat(final)
        except FileNotFoundError:
            return False
        if stat.st_size != size:
            return False
        if stat.st_mtime < time.time() - GC_REFRESH_SECONDS:
            os.utime(final)
        return True

    def _store_source(self, source) -> tuple[str, int, bytes | None]:
        """Store what a binary file object holds: small, its bytes come back; else a blob file."""
        if self.inline_max <= 0:
            return (*self._store_stream(source), None)
        head = bytearray()
        while len(head) <= self.inline_max:  # read() may return less than asked before the end
            chunk = source.read(self.inline_max + 1 - len(head))
            if isinstance(chunk, str):
                raise InvalidArgument("file content must be binary, not text")
            if not chunk:
                data = bytes(head)
                return _hash_bytes(data), len(data), data
            head += chunk
        return (*self._store_stream(source, bytes(head)), None)

    def _store_stream(self, source, head: bytes = b"") -> tuple[str, int]:
        """Write ``head`` and then everything ``source`` holds into a blob file; return (hash, size)."""
        digest = hashlib.sha256(head)
        size = len(head)
        tmp = self.tmp_dir / uuid.uuid4().hex
        try:
            with open(tmp, "wb") as out:
                out.write(head)
                while chunk := source.read(CHUNK):
                    if isinstance(chunk, str):
                        raise InvalidArgument("file content must be binary, not text")
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            blob = digest.hexdigest()
            final = self._blob_file(blob)
            if self._reuse_blob(final, size):
                tmp.unlink()
            else:
                os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return blob, size

    # -- lookups -----------------------------------------------------------------
    def _repo_id(self, repo: str) -> int:
        address = parse_repo(repo)
        row = self._db().execute(
            "SELECT id FROM repos WHERE project=? AND name=?", (address.project, address.repo)
        ).fetchone()
        if row is None:
            raise NotFound(f"repo {address} not found", repo=str(address))
        return row[0]

    def _repo_key(self, repo_id: int) -> str:
        row = self._db().execute("SELECT project, name FROM repos WHERE id=?", (repo_id,)).fetchone()
        if row is None:
            raise NotFound("repo not found")
        return row[1] if row[0] == DEFAULT_PROJECT else f"{row[0]}/{row[1]}"

    def _commit_from_row(self, row, repo_key: str) -> Commit:
        """A Commit value; a finished commit is built once and kept while its row says the same
        (another process may squash its parent away or edit its metadata)."""
        stamp = (repo_key, row[3], row[9], row[14])  # repo, parent, finished, metadata
        with self._cache_lock:
            cached = self._commits.get(row[0])
        if cached is not None and cached[0] == stamp:
            return cached[1]
        commit = self._build_commit(row, repo_key)
        if commit.finished is not None:
            with self._cache_lock:
                self._commits[commit.id] = (stamp, commit)
        return commit

    @staticmethod
    def _build_commit(row, repo_key: str) -> Commit:
        (cid, _repo_id, branch, parent, _seq, _line, message, author, started, finished, origin,
         size_bytes, n_files, provenance, metadata) = row
        return Commit(
            id=cid, repo=repo_key, branch=branch, parent=parent, message=message, author=author,
            started=from_timestamp(started), finished=from_timestamp(finished),
            provenance=tuple(Provenance(**p) for p in json.loads(provenance)) if provenance != "[]" else (),
            origin=origin, size_bytes=size_bytes, n_files=n_files,
            metadata=json.loads(metadata) if metadata != "{}" else {},
        )

    _COMMIT_COLUMNS = ("id, repo_id, branch, parent, seq, line, message, author, started, finished, origin, "
                       "size_bytes, n_files, provenance, metadata")

    def _commit_row(self, commit_id: str):
        return self._db().execute(f"SELECT {self._COMMIT_COLUMNS} FROM commits WHERE id=?", (commit_id,)).fetchone()

    def _resolve(self, repo: str, ref: str, *, allow_empty: bool = False) -> tuple[int, tuple | None]:
        """Resolve ``ref`` in ``repo`` to (repo id, commit row); None for an empty branch when allowed."""
        repo_id = self._repo_id(repo)
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("a branch name or commit id is required", ref=repr(ref))
        name, ancestors = parse_ref(ref)
        if is_commit_id(name):
            row = self._commit_row(name)
            if row is None or row[1] != repo_id:
                raise NotFound(f"commit {name} not found in repo {repo}", repo=repo, commit=name)
        else:
            head = self._db().execute(
                "SELECT head FROM branches WHERE repo_id=? AND name=?", (repo_id, name)
            ).fetchone()
            if head is None:
                raise NotFound(f"branch {name} not found in repo {repo}", repo=repo, branch=name)
            if head[0] is None:
                if allow_empty and not ancestors:
                    return repo_id, None
                raise NotFound(f"branch {name} of repo {repo} has no commits", repo=repo, branch=name)
            row = self._commit_row(head[0])
        for step in range(ancestors):
            if row[3] is None:
                raise NotFound(f"{ref} goes back {ancestors} commits but the history has only {step}", ref=ref)
            row = self._commit_row(row[3])
        return repo_id, row

    def _finished_view(self, repo: str, ref: str) -> tuple[tuple | None, list[tuple[int, int]]]:
        """(commit row, chain of (line, max seq)) for reading files; an empty branch has no chain."""
        _, row = self._resolve(repo, ref, allow_empty=True)
        if row is None:
            return None, []
        if row[9] is None:
            raise Conflict(f"commit {row[0]} is still open; its files can be read once it is finished",
                           commit=row[0])
        return row, self._chain(row[0], row[5], row[4])

    def _chain(self, commit_id: str, line: int, seq: int,
               db: sqlite3.Connection | None = None) -> list[tuple[int, int]]:
        """The chain of finished commit ``commit_id`` (its ``line`` and ``seq``), read from ``db``
        (default: this thread's connection) unless kept."""
        key = (commit_id, line, seq)
        with self._cache_lock:
            base = self._chains.get(key)
        if base is None:
            base = [tuple(x) for x in self._chains_raw(db or self._db(), line)]
            with self._cache_lock:
                self._chains[key] = base
        return [(line, seq), *base]

    def _lookup(self, chain: list[tuple[int, int]], path: str, db: sqlite3.Connection | None = None) -> _Row | None:
        db = db or self._db()
        directory = parent_dir(path) if path != "/" else ""
        for line, bound in chain:
            row = db.execute(
                "SELECT kind, blob, size, files, children FROM entries "
                "WHERE line=? AND dir=? AND path=? AND seq<=? ORDER BY seq DESC LIMIT 1",
                (line, directory, path, bound),
            ).fetchone()
            if row is not None:
                return None if row[0] == TOMBSTONE else _Row(*row)
        return None

    def dir_version(self, repo: str, ref: str, path: str) -> str | None:
        """An id of the state of directory ``path`` at ``ref``: the same id means the same content
        below it (the commit that last changed something there), None if it is not a directory."""
        path = normalize_path(path)
        row, chain = self._finished_view(repo, ref)
        if row is None:
            return None
        directory = "/" if path == "/" else path + "/"
        parent = parent_dir(directory) if directory != "/" else ""
        db = self._db()
        for line, bound in chain:
            found = db.execute(
                "SELECT kind, seq FROM entries WHERE line=? AND dir=? AND path=? AND seq<=? ORDER BY seq DESC LIMIT 1",
                (line, parent, directory, bound)).fetchone()
            if found is not None:
                if found[0] != DIR:
                    return None
                owner = db.execute("SELECT id FROM commits WHERE line=? AND seq=?", (line, found[1])).fetchone()
                return owner[0] if owner else None
        return None

    def _dir_rows(self, chain, directory: str, after: str | None) -> Iterator[tuple[str, _Row]]:
        """Live children of ``directory`` after ``after``, in path order, merged across the chain."""
        def line_rows(priority: int, line: int, bound: int):
            marker = after or ""
            while True:
                # each page through the connection of the thread reading it: a listing may go on on
                # another thread (a download read a piece at a time), while the one that began it is
                # inside a transaction of its own on its connection
                rows = self._db().execute(
                    "SELECT path, kind, blob, size, files, children, max(seq) FROM entries "
                    "WHERE line=? AND dir=? AND path>? AND seq<=? GROUP BY path ORDER BY path LIMIT ?",
                    (line, directory, marker, bound, DEFAULT_PAGE),
                ).fetchall()
                for row in rows:
                    yield row[0], priority, _Row(*row[1:6])
                if len(rows) < DEFAULT_PAGE:
                    return
                marker = rows[-1][0]

        streams = [line_rows(i, line, bound) for i, (line, bound) in enumerate(chain)]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda r: (r[0], r[1]))
        last = None
        for path, _priority, row in merged:
            if path == last:  # an older line's row for a path already decided by a newer line
                continue
            last = path
            if row.kind != TOMBSTONE:
                yield path, row

    def _info(self, path: str, row: _Row, commit_id: str) -> FileInfo:
        if row.kind == DIR:
            return FileInfo(path=path, type="dir", size=row.size, committed=commit_id)
        return FileInfo(path=path, type="file", size=row.size, hash=row.blob, committed=commit_id)

    # -- repos -------------------------------------------------------------------
    def create_repo(self, repo: str, description: str = "") -> Repo:
        address = parse_repo(repo)
        if not isinstance(description, str):
            raise InvalidArgument("description must be a string")
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO repos (project, name, description, created) VALUES (?,?,?,?)",
                    (address.project, address.repo, description, time.time()),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"repo {address} already exists", repo=str(address)) from None
        return self.inspect_repo(repo)

    def _repos(self, where: str = "", args: tuple = ()) -> list[Repo]:
        db = self._db()
        rows = db.execute(
            "SELECT r.id, r.project, r.name, r.description, r.created, "
            "(SELECT group_concat(name, char(0)) FROM (SELECT name FROM branches b WHERE b.repo_id=r.id ORDER BY name)), "
            "(SELECT c.size_bytes FROM branches b JOIN commits c ON c.id=b.head WHERE b.repo_id=r.id AND b.name='master') "
            f"FROM repos r {where} ORDER BY r.project, r.name",
            args,
        ).fetchall()
        return [
            Repo(name=name, project=project, description=desc, created=from_timestamp(created),
                 size_bytes=size or 0, branches=tuple(branches.split("\0")) if branches else ())
            for _id, project, name, desc, created, branches, size in rows
        ]

    def inspect_repo(self, repo: str) -> Repo:
        address = parse_repo(repo)
        found = self._repos("WHERE r.project=? AND r.name=?", (address.project, address.repo))
        if not found:
            raise NotFound(f"repo {address} not found", repo=str(address))
        return found[0]

    def list_repos(self) -> list[Repo]:
        return self._repos()

    def delete_repo(self, repo: str) -> None:
        repo_id = self._repo_id(repo)
        with self._write() as db:
            lines = [r[0] for r in db.execute("SELECT id FROM lines WHERE repo_id=?", (repo_id,))]
            for line in lines:
                db.execute("DELETE FROM entries WHERE line=?", (line,))
            db.execute("DELETE FROM lines WHERE repo_id=?", (repo_id,))
            db.execute("DELETE FROM staged WHERE commit_id IN (SELECT id FROM commits WHERE repo_id=?)", (repo_id,))
            for table in ("commits", "branches", "branch_moves"):
                db.execute(f"DELETE FROM {table} WHERE repo_id=?", (repo_id,))
            db.execute("DELETE FROM repos WHERE id=?", (repo_id,))

    # -- branches ----------------------------------------------------------------
    def _branch(self, repo_key: str, name: str, head: str | None) -> Branch:
        commit = None
        if head is not None:
            commit = self._commit_from_row(self._commit_row(head), repo_key)
        return Branch(repo=repo_key, name=name, head=commit)

    def create_branch(self, repo: str, branch: str, head: str | None = None) -> Branch:
        validate_name(branch, "branch")
        repo_id = self._repo_id(repo)
        head_id = None
        if head is not None:
            _, row = self._resolve(repo, head)
            if row[9] is None:
                raise Conflict(f"commit {row[0]} is still open; a branch can only point at a finished commit")
            head_id = row[0]
        with self._write() as db:
            try:
                db.execute("INSERT INTO branches (repo_id, name, head) VALUES (?,?,?)", (repo_id, branch, head_id))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"branch {branch} already exists in repo {repo}", repo=repo, branch=branch) from None
        return self.inspect_branch(repo, branch)

    def inspect_branch(self, repo: str, branch: str) -> Branch:
        validate_name(branch, "branch")
        repo_id = self._repo_id(repo)
        row = self._db().execute("SELECT head FROM branches WHERE repo_id=? AND name=?", (repo_id, branch)).fetchone()
        if row is None:
            raise NotFound(f"branch {branch} not found in repo {repo}", repo=repo, branch=branch)
        return self._branch(self._repo_key(repo_id), branch, row[0])

    def list_branches(self, repo: str | None = None) -> list[Branch]:
        # Heads first, then only the commits not already kept (finished commits never change):
        # a listing of thousands of branches mostly shows the same commits poll after poll.
        db = self._db()
        query = "SELECT r.project, r.name, b.name, b.head FROM branches b JOIN repos r ON r.id=b.repo_id"
        if repo is None:
            rows = db.execute(query + " ORDER BY r.project, r.name, b.name").fetchall()
        else:
            rows = db.execute(query + " WHERE b.repo_id=? ORDER BY b.name", (self._repo_id(repo),)).fetchall()
        heads = {head for *_, head in rows if head is not None}
        with self._cache_lock:
            kept = {head: found[1] for head in heads if (found := self._commits.get(head)) is not None}
        missing = [head for head in heads if head not in kept]
        fetched: dict[str, tuple] = {}
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            fetched.update((row[0], row) for row in db.execute(
                f"SELECT {self._COMMIT_COLUMNS} FROM commits WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        result = []
        for project, name, branch, head_id in rows:
            key = name if project == DEFAULT_PROJECT else f"{project}/{name}"
            head = None
            if head_id is not None:
                head = kept.get(head_id)
                if head is None or head.repo != key:
                    row = fetched.get(head_id) or self._commit_row(head_id)
                    if row is None:
                        continue  # its repo was deleted between the two reads
                    head = self._commit_from_row(row, key)
            result.append(Branch(repo=key, name=branch, head=head))
        return result

    def delete_branch(self, repo: str, branch: str) -> None:
        self.inspect_branch(repo, branch)
        repo_id = self._repo_id(repo)
        with self._write() as db:
            db.execute("DELETE FROM branches WHERE repo_id=? AND name=?", (repo_id, branch))

    def move_branch(self, repo: str, branch: str, to: str, *, expected_head: str | None = None,
                    author: str = "", reason: str = "rollback") -> Branch:
        validate_name(branch, "branch")
        repo_id, target = self._resolve(repo, to)
        if target[9] is None:
            raise Conflict(f"commit {target[0]} is still open; a branch can only point at a finished commit")
        with self._write() as db:
            row = db.execute("SELECT head FROM branches WHERE repo_id=? AND name=?", (repo_id, branch)).fetchone()
            if row is None:
                raise NotFound(f"branch {branch} not found in repo {repo}", repo=repo, branch=branch)
            if expected_head is not None and row[0] != expected_head:
                raise Conflict(
                    f"branch {branch} moved: its head is {row[0]}, not {expected_head}",
                    branch=branch, head=row[0], expected=expected_head,
                )
            db.execute("UPDATE branches SET head=? WHERE repo_id=? AND name=?", (target[0], repo_id, branch))
            db.execute(
                "INSERT INTO branch_moves (repo_id, branch, old_head, new_head, author, time, reason) "
                "VALUES (?,?,?,?,?,?,?)",
                (repo_id, branch, row[0], target[0], str(author), time.time(), str(reason)),
            )
        return self.inspect_branch(repo, branch)

    def branch_moves(self, repo: str, branch: str) -> list[BranchMove]:
        repo_id = self._repo_id(repo)
        key = self._repo_key(repo_id)
        rows = self._db().execute(
            "SELECT old_head, new_head, author, time, reason FROM branch_moves "
            "WHERE repo_id=? AND branch=? ORDER BY id DESC", (repo_id, branch),
        ).fetchall()
        return [BranchMove(key, branch, old, new, author, from_timestamp(t), reason)
                for old, new, author, t, reason in rows]

    # -- commits -----------------------------------------------------------------
    def start_commit(self, repo: str, branch: str, *, message: str = "", author: str = "",
                     provenance: Iterable[Provenance] = (), metadata: dict[str, str] | None = None,
                     origin: str = "USER", commit_id: str | None = None) -> Commit:
        """See ``Backend.start_commit``. ``origin`` is USER or AUTO (pachd's kinds); ``commit_id``
        (32 hex digits) names the commit instead of a fresh random id."""
        validate_name(branch, "branch")
        if origin not in ("USER", "AUTO"):
            raise InvalidArgument(f"commit origin must be USER or AUTO, not {origin!r}")
        if commit_id is not None and not is_commit_id(commit_id):
            raise InvalidArgument(f"invalid commit id {commit_id!r}")
        repo_id = self._repo_id(repo)
        metadata = check_commit_fields(message, author, metadata)
        resolved = []
        for item in provenance:
            if not isinstance(item, Provenance):
                raise InvalidArgument("provenance items must be Provenance(repo, commit)")
            _, row = self._resolve(item.repo, item.commit)
            resolved.append({"repo": item.repo, "commit": row[0], "branch": item.branch or row[2]})
        commit_id = commit_id or uuid.uuid4().hex
        with self._write() as db:
            if db.execute("SELECT 1 FROM commits WHERE id=?", (commit_id,)).fetchone() is not None:
                raise AlreadyExists(f"commit {commit_id} already exists", commit=commit_id)
            self._insert_commit(db, commit_id, repo_id, branch, message=message, author=author, origin=origin,
                                provenance=json.dumps(resolved), metadata=json.dumps(metadata, sort_keys=True))
        return self._commit_from_row(self._commit_row(commit_id), self._repo_key(repo_id))

    @staticmethod
    def _insert_commit(db: sqlite3.Connection, commit_id: str, repo_id: int, branch: str, *, message: str = "",
                       author: str = "", origin: str = "AUTO", provenance: str = "[]",
                       metadata: str = "{}") -> str | None:
        """Insert an open commit on ``branch`` (created if missing), its parent the branch head; return the parent."""
        head = db.execute("SELECT head FROM branches WHERE repo_id=? AND name=?", (repo_id, branch)).fetchone()
        if head is None:
            db.execute("INSERT INTO branches (repo_id, name, head) VALUES (?,?,NULL)", (repo_id, branch))
        parent = head[0] if head else None
        db.execute(
            "INSERT INTO commits (id, repo_id, branch, parent, message, author, started, origin, provenance, metadata) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (commit_id, repo_id, branch, parent, message, author, time.time(), origin, provenance, metadata),
        )
        return parent

    def open_commits(self, repo: str, branch: str | None = None) -> list[Commit]:
        """Commits of ``repo`` (on ``branch``) that were started and neither finished nor aborted."""
        repo_id = self._repo_id(repo)
        key = self._repo_key(repo_id)
        query = f"SELECT {self._COMMIT_COLUMNS} FROM commits WHERE repo_id=? AND finished IS NULL"
        args: tuple = (repo_id,)
        if branch is not None:
            query, args = query + " AND branch=?", (repo_id, branch)
        return [self._build_commit(row, key) for row in self._db().execute(query + " ORDER BY started", args)]

    def _open_commit(self, commit: Commit) -> tuple:
        if not isinstance(commit, Commit):
            raise InvalidArgument("expected a Commit returned by start_commit")
        row = self._commit_row(commit.id)
        if row is None:
            raise NotFound(f"commit {commit.id} not found (it may have been aborted)", commit=commit.id)
        if row[9] is not None:
            raise Conflict(f"commit {commit.id} is already finished; start a new commit", commit=commit.id)
        return row

    def _flush(self, commit_id: str) -> None:
        """Write what put_files buffered for ``commit_id``: small contents and the staged rows that
        refer to them in one transaction (so no row ever refers to a content not there)."""
        with self._lock:
            pending = self._buffers.pop(commit_id, None)
        if pending is None or not pending.rows:
            return
        with self._write() as db:
            db.executemany("INSERT OR IGNORE INTO inline_blobs (hash, data) VALUES (?,?)", pending.inline.items())
            db.executemany(
                "INSERT OR REPLACE INTO staged (commit_id, path, op, blob, size) VALUES (?,?,?,?,?)",
                [(commit_id, path, *rest) for path, rest in pending.rows.items()],
            )

    def put_files(self, commit: Commit, items: Iterable[tuple[str, Content]]) -> int:
        self._open_commit(commit)
        checked = isinstance(items, (list, tuple))
        if checked:  # a sequence is checked whole before anything is stored
            items = [(normalize_path(path, allow_root=False), content) for path, content in items]
        count = 0
        for path, content in items:
            if not checked:
                path = normalize_path(path, allow_root=False)
            blob, size, data = self._store_blob(content)
            with self._lock:
                pending = self._buffers.setdefault(commit.id, _Pending())
                pending.rows[path] = (OP_PUT, blob, size)
                if data is not None:
                    pending.inline[blob] = data
                    pending.inline_bytes += size
                full = len(pending.rows) >= FLUSH_ROWS or pending.inline_bytes >= FLUSH_BYTES
            if full:
                self._flush(commit.id)
            count += 1
        return count

    def delete_file(self, commit: Commit, path: str) -> None:
        self._open_commit(commit)
        path = normalize_path(path)
        self._flush(commit.id)
        with self._write() as db:
            # Staged puts below a deleted directory are dropped; the directory's committed files are
            # expanded into deletions when the commit lands (against the head it lands on).
            prefix = "/" if path == "/" else path + "/"
            db.execute("DELETE FROM staged WHERE commit_id=? AND path>=? AND path<?",
                       (commit.id, prefix, prefix[:-1] + "0"))
            db.execute("INSERT OR REPLACE INTO staged VALUES (?,?,?,?,0)", (commit.id, prefix, OP_DELETE_TREE, None))
            if path != "/":
                db.execute("INSERT OR REPLACE INTO staged VALUES (?,?,?,?,0)", (commit.id, path, OP_DELETE, None))

    def abort_commit(self, commit: Commit) -> None:
        self._open_commit(commit)
        with self._lock:
            self._buffers.pop(commit.id, None)
        with self._write() as db:
            db.execute("DELETE FROM staged WHERE commit_id=?", (commit.id,))
            db.execute("DELETE FROM commits WHERE id=? AND finished IS NULL", (commit.id,))
        self._changed()

    def annotation(self, kind: str, name: str) -> dict | None:
        """A small JSON record kept beside the data (projects, metadata of repos and branches)."""
        row = self._db().execute("SELECT value FROM annotations WHERE kind=? AND name=?", (kind, name)).fetchone()
        return None if row is None else json.loads(row[0])

    def annotations(self, kind: str) -> dict[str, dict]:
        return {name: json.loads(value) for name, value in self._db().execute(
            "SELECT name, value FROM annotations WHERE kind=? ORDER BY name", (kind,))}

    def annotate(self, kind: str, name: str, value: dict | None) -> None:
        """Store (or with None remove) the record ``kind``/``name``."""
        with self._write() as db:
            if value is None:
                db.execute("DELETE FROM annotations WHERE kind=? AND name=?", (kind, name))
            else:
                db.execute("INSERT OR REPLACE INTO annotations VALUES (?,?,?)",
                           (kind, name, json.dumps(value, sort_keys=True)))

    def set_repo_description(self, repo: str, description: str) -> Repo:
        if not isinstance(description, str):
            raise InvalidArgument("description must be a string")
        repo_id = self._repo_id(repo)
        with self._write() as db:
            db.execute("UPDATE repos SET description=? WHERE id=?", (description, repo_id))
        return self.inspect_repo(repo)

    def staged_changes(self, commit: Commit) -> tuple[list[tuple[str, str, int]], list[str], list[str]]:
        """What an open commit staged so far: (files written as (path, blob, size), files deleted,
        directories deleted as ``/dir/`` prefixes, ``/`` for everything)."""
        self._open_commit(commit)
        self._flush(commit.id)
        puts, deletes, trees = [], [], []
        for path, op, blob, size in self._db().execute(
                "SELECT path, op, blob, size FROM staged WHERE commit_id=? ORDER BY path", (commit.id,)):
            if op == OP_PUT:
                puts.append((path, blob, size))
            elif op == OP_DELETE:
                deletes.append(path)
            else:
                trees.append(path)
        return puts, deletes, trees

    def read_staged(self, commit: Commit, path: str) -> Iterator[bytes] | None:
        """What an open commit has staged for ``path``: its content if written, nothing (an empty
        iterator) if deleted (itself or a directory above it), None if the commit did not touch it."""
        self._open_commit(commit)
        path = normalize_path(path, allow_root=False)
        with self._lock:
            pending = self._buffers.get(commit.id)
            row = pending.rows.get(path) if pending else None
            data = pending.inline.get(row[1]) if row is not None else None
        if data is not None:  # a small content not written to the database yet
            return iter((data,) if data else ())
        db = self._db()
        if row is None:
            row = db.execute("SELECT op, blob, size FROM staged WHERE commit_id=? AND path=?",
                             (commit.id, path)).fetchone()
        if row is not None:
            return self.read_blob(row[1]) if row[0] == OP_PUT else iter(())
        node = path
        while node != "/":
            node = parent_dir(node)
            if db.execute("SELECT 1 FROM staged WHERE commit_id=? AND path=? AND op=?",
                          (commit.id, node, OP_DELETE_TREE)).fetchone() is not None:
                return iter(())
        return None

    def auto_commit(self, repo: str, branch: str, *, commit_id: str | None = None) -> Commit:
        """Land an empty commit of origin AUTO on ``branch`` (created if missing), as pachd does for a
        branch created without a head."""
        validate_name(branch, "branch")
        repo_id = self._repo_id(repo)
        commit_id = commit_id or uuid.uuid4().hex
        with self._write() as db:  # one transaction: a crash leaves no open AUTO commit behind
            parent = self._insert_commit(db, commit_id, repo_id, branch)
            row = db.execute(f"SELECT {self._COMMIT_COLUMNS} FROM commits WHERE id=?", (commit_id,)).fetchone()
            self._land(db, row, parent)
        self._changed()
        return self.inspect_commit(repo, commit_id)

    def clear_commit(self, commit: Commit) -> None:
        """Forget every change staged in an open commit; it stays open."""
        self._open_commit(commit)
        with self._lock:
            self._buffers.pop(commit.id, None)
        with self._write() as db:
            db.execute("DELETE FROM staged WHERE commit_id=?", (commit.id,))

    def set_commit_message(self, commit: Commit, message: str) -> None:
        """Replace the description of an open commit (pachd's FinishCommit with a description)."""
        if not isinstance(message, str):
            raise InvalidArgument("message must be a string")
        self._open_commit(commit)
        with self._write() as db:
            db.execute("UPDATE commits SET message=? WHERE id=? AND finished IS NULL", (message, commit.id))

    def set_commit_metadata(self, repo: str, commit_id: str, metadata: dict[str, str]) -> Commit:
        """Replace a commit's metadata (open or finished): pachd's EditMetadata on a commit."""
        check_metadata(metadata)
        repo_id, row = self._resolve(repo, commit_id)
        with self._write() as db:
            db.execute("UPDATE commits SET metadata=? WHERE id=?", (json.dumps(metadata, sort_keys=True), row[0]))
        with self._cache_lock:
            self._commits.pop(row[0], None)
        self._changed()
        return self.inspect_commit(repo, row[0])

    def children(self, repo: str, commit_id: str) -> list[Commit]:
        """Commits (open or finished) whose parent is ``commit_id``, oldest first."""
        repo_id, row = self._resolve(repo, commit_id)
        key = self._repo_key(repo_id)
        rows = self._db().execute(
            f"SELECT {self._COMMIT_COLUMNS} FROM commits WHERE parent=? AND repo_id=? ORDER BY started",
            (row[0], repo_id)).fetchall()
        return [self._commit_from_row(r, key) for r in rows]

    def all_commits(self, repo: str | None = None) -> list[Commit]:
        """Every commit (open or finished) of ``repo`` or of the whole store, newest first."""
        db = self._db()
        query = f"SELECT {self._COMMIT_COLUMNS} FROM commits"
        if repo is None:
            rows = db.execute(query + " ORDER BY started DESC").fetchall()
        else:
            rows = db.execute(query + " WHERE repo_id=? ORDER BY started DESC", (self._repo_id(repo),)).fetchall()
        keys: dict[int, str] = {}
        result = []
        for row in rows:
            if row[1] not in keys:
                keys[row[1]] = self._repo_key(row[1])
            result.append(self._commit_from_row(row, keys[row[1]]))
        return result

    def squash_commit(self, repo: str, commit_id: str) -> None:
        """Remove a finished commit from history, keeping what it wrote in its child (pachd's
        SquashCommitSet): the child's tree is unchanged, its parent becomes the commit's parent, and
        branches pointing at the commit move to that parent. The commit must have exactly one
        child, finished and on the same line (a linear history); other shapes raise Conflict."""
        repo_id, row = self._resolve(repo, commit_id)
        commit_id, parent, seq, line = row[0], row[3], row[4], row[5]
        if row[9] is None:
            raise Conflict(f"commit {commit_id} is still open", commit=commit_id)
        with self._write() as db:
            children = db.execute("SELECT id, seq, line, finished FROM commits WHERE parent=?", (commit_id,)).fetchall()
            if not children:
                raise Conflict(f"commit {commit_id} has no children", commit=commit_id)
            if len(children) > 1 or children[0][2] != line or children[0][3] is None:
                raise Conflict(f"cannot squash commit {commit_id}: only a commit with one finished child "
                               "on the same line of history can be squashed here", commit=commit_id)
            child, child_seq = children[0][0], children[0][1]
            # The child's own rows win; the commit's other rows become the child's.
            db.execute("DELETE FROM entries WHERE line=? AND seq=? AND (dir, path) IN "
                       "(SELECT dir, path FROM entries WHERE line=? AND seq=?)", (line, seq, line, child_seq))
            db.execute("UPDATE entries SET seq=? WHERE line=? AND seq=?", (child_seq, line, seq))
            db.execute("UPDATE commits SET parent=? WHERE id=?", (parent, child))
            headless = [name for (name,) in db.execute(
                "SELECT name FROM branches WHERE repo_id=? AND head=?", (repo_id, commit_id))] if parent is None else []
            db.execute("UPDATE branches SET head=? WHERE repo_id=? AND head=?", (parent, repo_id, commit_id))
            db.execute("DELETE FROM branch_moves WHERE repo_id=? AND (new_head=? OR old_head=?)",
                       (repo_id, commit_id, commit_id))
            db.execute("DELETE FROM commits WHERE id=?", (commit_id,))
        with self._cache_lock:
            self._commits.pop(commit_id, None)
            self._commits.pop(child, None)
        if headless:  # as pachd: branches left without a head get a new empty AUTO commit
            key = self._repo_key(repo_id)
            auto = self.auto_commit(key, headless[0])
            for name in headless[1:]:
                self.move_branch(key, name, auto.id, reason="squashed commit")
        self._changed()

    def drop_finished_commit(self, repo: str, commit_id: str) -> None:
        """Delete a finished commit that has no children, as pachd's DropCommitSet does: branches
        pointing at it move to its parent, or to a new empty AUTO commit when it has none."""
        repo_id, row = self._resolve(repo, commit_id)
        if row[9] is None:
            raise Conflict(f"commit {row[0]} is still open; drop it as an open commit", commit=row[0])
        commit_id, parent, seq, line = row[0], row[3], row[4], row[5]
        headless: list[str] = []
        with self._write() as db:
            if db.execute("SELECT 1 FROM commits WHERE parent=?", (commit_id,)).fetchone() is not None:
                raise Conflict(f"cannot drop commit {commit_id}: it has children", commit=commit_id)
            tip = db.execute("SELECT tip_seq FROM lines WHERE id=?", (line,)).fetchone()[0]
            if tip != seq:
                raise Conflict(f"cannot drop commit {commit_id}: its line continues", commit=commit_id)
            db.execute("DELETE FROM entries WHERE line=? AND seq=?", (line, seq))
            parent_row = db.execute("SELECT line, seq FROM commits WHERE id=?", (parent,)).fetchone() if parent else None
            if parent_row is not None and parent_row[0] == line:
                db.execute("UPDATE lines SET tip_seq=? WHERE id=?", (parent_row[1], line))
            else:  # the commit started its line: the line goes with it
                if db.execute("SELECT 1 FROM entries WHERE line=? LIMIT 1", (line,)).fetchone() is None:
                    db.execute("DELETE FROM lines WHERE id=?", (line,))
            for (name,) in db.execute("SELECT name FROM branches WHERE repo_id=? AND head=?",
                                      (repo_id, commit_id)).fetchall():
                if parent is None:
                    headless.append(name)
                else:
                    db.execute("UPDATE branches SET head=? WHERE repo_id=? AND name=?", (parent, repo_id, name))
            db.execute("DELETE FROM branch_moves WHERE repo_id=? AND (new_head=? OR old_head=?)",
                       (repo_id, commit_id, commit_id))
            db.execute("DELETE FROM commits WHERE id=?", (commit_id,))
            if headless:  # as pachd: the branches keep a head, a new empty AUTO commit
                db.execute("UPDATE branches SET head=NULL WHERE repo_id=? AND head=?", (repo_id, commit_id))
        with self._cache_lock:
            self._commits.pop(commit_id, None)
        if headless:
            key = self._repo_key(repo_id)
            auto = self.auto_commit(key, headless[0])
            for name in headless[1:]:
                self.move_branch(key, name, auto.id, reason="dropped commit")
        self._changed()

    def finish_commit(self, commit: Commit, *, expected_parent: str | None = None) -> Commit:
        self._open_commit(commit)
        self._flush(commit.id)
        with self._write() as db:
            row = db.execute(f"SELECT {self._COMMIT_COLUMNS} FROM commits WHERE id=?", (commit.id,)).fetchone()
            if row is None or row[9] is not None:
                raise Conflict(f"commit {commit.id} is no longer open", commit=commit.id)
            repo_id, branch = row[1], row[2]
            head = db.execute("SELECT head FROM branches WHERE repo_id=? AND name=?", (repo_id, branch)).fetchone()
            if head is None:
                raise NotFound(f"branch {branch} was deleted while commit {commit.id} was open", branch=branch)
            parent = head[0]
            if expected_parent is not None and parent != expected_parent:
                raise Conflict(
                    f"branch {branch} moved to {parent} (expected {expected_parent}); the commit stays open",
                    branch=branch, head=parent, expected=expected_parent,
                )
            self._land(db, row, parent)
        self._changed()
        return self.inspect_commit(commit.repo, commit.id)

    def _land(self, db: sqlite3.Connection, row: tuple, parent: str | None) -> None:
        commit_id, repo_id = row[0], row[1]
        staged = db.execute("SELECT path, op, blob, size FROM staged WHERE commit_id=?", (commit_id,)).fetchall()
        if parent is None:
            chain: list[tuple[int, int]] = []
            parent_line = parent_seq = None
        else:
            prow = db.execute("SELECT line, seq FROM commits WHERE id=?", (parent,)).fetchone()
            parent_line, parent_seq = prow
            chain = self._chain(parent, parent_line, parent_seq, db)

        def old(path: str) -> _Row | None:
            return self._lookup(chain, path, db) if chain else None

        # Final state of every changed file: (blob, size) for a put, None for a delete.
        changes: dict[str, tuple[str, int] | None] = {}
        tree_deletes = []
        for path, op, blob, size in staged:
            if op == OP_PUT:
                changes[path] = (blob, size)
            elif op == OP_DELETE:
                changes[path] = None
            else:
                tree_deletes.append(path)
        for prefix in tree_deletes:
            if chain:
                for path, _row in self._walk_files(chain, prefix):
                    changes.setdefault(path, None)

        # Per-file deltas, propagated to every ancestor directory.
        file_rows = []
        child_delta: dict[str, int] = {}
        size_delta: dict[str, int] = {}
        files_delta: dict[str, int] = {}
        for path, new in changes.items():
            before = old(path)
            if new is None and before is None:
                continue  # deleting something that is not there is a no-op, as in Pachyderm
            if new is not None and before is not None and before.blob == new[0]:
                continue  # unchanged content: no row, no spurious diff
            d_files = (new is not None) - (before is not None)
            d_size = (new[1] if new else 0) - (before.size if before else 0)
            directory = parent_dir(path)
            file_rows.append((directory, path, FILE if new else TOMBSTONE, new[0] if new else None,
                              new[1] if new else 0, 1 if new else 0, 0))
            child_delta[directory] = child_delta.get(directory, 0) + d_files
            node = path
            while node != "/":
                node = parent_dir(node)
                size_delta[node] = size_delta.get(node, 0) + d_size
                files_delta[node] = files_delta.get(node, 0) + d_files

        # Directories, deepest first, so a directory that appears or empties updates its parent's count.
        dir_rows = []
        root_state = None
        for directory in sorted(set(size_delta) | set(child_delta) | {"/"}, key=lambda d: -d.count("/")):
            before = old(directory)
            children = (before.children if before else 0) + child_delta.get(directory, 0)
            size = (before.size if before else 0) + size_delta.get(directory, 0)
            files = (before.files if before else 0) + files_delta.get(directory, 0)
            if directory == "/":
                root_state = (size, files)
                dir_rows.append(("", "/", DIR, None, size, files, children))
                continue
            up = parent_dir(directory)
            if children > 0 and before is None:
                child_delta[up] = child_delta.get(up, 0) + 1
            elif children <= 0 and before is not None:
                child_delta[up] = child_delta.get(up, 0) - 1
            if children > 0:
                dir_rows.append((up, directory, DIR, None, size, files, children))
            elif before is not None:
                dir_rows.append((up, directory, TOMBSTONE, None, 0, 0, 0))

        self._check_clashes(changes, dir_rows, old)
        seq = (db.execute("SELECT max(seq) FROM commits").fetchone()[0] or 0) + 1
        if parent is not None and db.execute(
            "SELECT tip_seq FROM lines WHERE id=?", (parent_line,)
        ).fetchone()[0] == parent_seq:
            line = parent_line
            db.execute("UPDATE lines SET tip_seq=? WHERE id=?", (seq, line))
        else:
            base = [] if parent is None else [[parent_line, parent_seq], *self._chains_raw(db, parent_line)]
            line = db.execute("INSERT INTO lines (repo_id, tip_seq, chain) VALUES (?,?,?)",
                              (repo_id, seq, json.dumps(base))).lastrowid
        db.executemany(
            "INSERT INTO entries (line, dir, path, seq, kind, blob, size, files, children) VALUES (?,?,?,?,?,?,?,?,?)",
            [(line, d, p, seq, k, b, s, f, c) for d, p, k, b, s, f, c in file_rows + dir_rows],
        )
        db.execute(
            "UPDATE commits SET parent=?, seq=?, line=?, finished=?, size_bytes=?, n_files=? WHERE id=?",
            (parent, seq, line, time.time(), root_state[0], root_state[1], commit_id),
        )
        db.execute("UPDATE branches SET head=? WHERE repo_id=? AND name=?", (commit_id, repo_id, row[2]))
        db.execute("DELETE FROM staged WHERE commit_id=?", (commit_id,))

    @staticmethod
    def _check_clashes(changes, dir_rows, old) -> None:
        """A path cannot be both a file and a directory in the new tree."""
        dir_alive = {row[1]: row[2] == DIR for row in dir_rows}
        for path, new in changes.items():
            if new is not None:
                as_dir = path + "/"
                alive = dir_alive[as_dir] if as_dir in dir_alive else old(as_dir) is not None
                if alive:
                    raise InvalidPath(f"cannot write file {path}: a directory of that name exists", path=path)
        for directory, alive in dir_alive.items():
            if alive and directory != "/":
                as_file = directory[:-1]
                exists = changes[as_file] is not None if as_file in changes else old(as_file) is not None
                if exists:
                    raise InvalidPath(f"cannot create directory {directory}: a file of that name exists",
                                      path=as_file)

    def _chains_raw(self, db: sqlite3.Connection, line: int) -> list:
        return json.loads(db.execute("SELECT chain FROM lines WHERE id=?", (line,)).fetchone()[0])

    def _walk_files(self, chain, prefix: str) -> Iterator[tuple[str, _Row]]:
        """Every file below directory ``prefix`` (ends with '/')."""
        stack = [prefix]
        while stack:
            directory = stack.pop()
            for path, row in self._dir_rows(chain, directory, None):
                if row.kind == DIR:
                    stack.append(path)
                else:
                    yield path, row

    def read_tree(self, repo: str, ref: str, path: str = "/") -> Iterator[tuple[FileInfo, Iterator[bytes] | None]]:
        """``Backend.read_tree`` in one pass: each directory's rows read a page at a time, each file
        straight from its content (a download of 100,000 files costs about what ``tar`` of them costs)."""
        top = self.inspect_file(repo, ref, path)
        if top.committed is None:  # an empty branch
            return
        commit_id = top.committed
        _row, chain = self._finished_view(repo, commit_id)
        if not top.is_dir:
            yield top, self.read_blob(top.hash)
            return

        def below(directory: str) -> Iterator[tuple[FileInfo, Iterator[bytes] | None]]:
            rows = self._dir_rows(chain, directory, None)
            while batch := list(itertools.islice(rows, TREE_BATCH)):
                # the small contents of a batch in one query, not one query per file
                wanted = [entry.blob for _child, entry in batch if entry.kind != DIR and entry.size <= self.inline_max]
                inline = dict(self._inline_many(wanted)) if wanted else {}
                for child, entry in batch:
                    if entry.kind == DIR:
                        yield self._info(child, entry, commit_id), None
                        yield from below(child)
                    elif entry.blob in inline:
                        yield self._info(child, entry, commit_id), iter((inline[entry.blob],) if entry.size else ())
                    else:
                        yield self._info(child, entry, commit_id), self.read_blob(entry.blob)

        if top.path != "/":
            yield top, None
        yield from below(top.path)

    def inspect_commit(self, repo: str, ref: str) -> Commit:
        repo_id, row = self._resolve(repo, ref)
        return self._commit_from_row(row, self._repo_key(repo_id))

    def list_commits(self, repo: str, ref: str, *, limit: int = 50, before: str | None = None) -> list[Commit]:
        check_history_limit(limit)
        repo_id, row = self._resolve(repo, ref, allow_empty=True)
        key = self._repo_key(repo_id)
        if before is not None:
            _, cursor = self._resolve(repo, before)
            row = self._commit_row(cursor[3]) if cursor[3] else None
        result = []
        while row is not None and len(result) < limit:
            result.append(self._commit_from_row(row, key))
            row = self._commit_row(row[3]) if row[3] else None
        return result

    # -- files -------------------------------------------------------------------
    def list_dir(self, repo: str, ref: str, path: str = "/", *, limit: int = DEFAULT_PAGE,
                 after: str | None = None) -> FilePage:
        path = check_page(path, limit, after)
        row, chain = self._finished_view(repo, ref)
        if row is None:
            if path == "/":
                return FilePage(items=(), next=None)
            raise NotFound(f"{path} not found: the branch has no commits", path=path)
        directory = path if path == "/" else path + "/"
        if path != "/":
            found = self._lookup(chain, directory)
            if found is None:
                if self._lookup(chain, path) is not None:
                    raise InvalidArgument(f"{path} is a file, not a directory", path=path)
                raise NotFound(f"directory {path} not found in {repo}@{ref}", path=path)
        items = []
        for child, entry in self._dir_rows(chain, directory, after):
            items.append(self._info(child, entry, row[0]))
            if len(items) == limit + 1:
                break
        more = len(items) > limit
        items = items[:limit]
        return FilePage(items=tuple(items), next=items[-1].path if more else None)

    def inspect_file(self, repo: str, ref: str, path: str) -> FileInfo:
        path = normalize_path(path)
        row, chain = self._finished_view(repo, ref)
        if path == "/":
            entry = self._lookup(chain, "/") if chain else None
            return FileInfo(path="/", type="dir", size=entry.size if entry else 0, committed=row[0] if row else None)
        entry = self._lookup(chain, path) if chain else None
        if entry is None and chain:
            entry = self._lookup(chain, path + "/")
            if entry is not None:
                return self._info(path + "/", entry, row[0])
        if entry is None:
            raise NotFound(f"{path} not found in {repo}@{ref}", path=path)
        return self._info(path, entry, row[0])

    def read_file(self, repo: str, ref: str, path: str, *, offset: int = 0,
                  length: int | None = None) -> Iterator[bytes]:
        check_range(offset, length)
        info = self.inspect_file(repo, ref, path)
        if info.is_dir:
            raise InvalidArgument(f"{path} is a directory", path=path)
        return self.read_blob(info.hash, offset, length)

    @staticmethod
    def _read_blob_file(blob_file: str, offset: int, length: int | None) -> Iterator[bytes]:
        with open(blob_file, "rb") as source:
            source.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                chunk = source.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def diff(self, repo: str, old_ref: str | None, new_ref: str, path: str = "/") -> list[FileChange]:
        path = normalize_path(path)
        prefix = "/" if path == "/" else path + "/"
        new_row, new_chain = self._finished_view(repo, new_ref)
        old_row, old_chain = (None, []) if old_ref is None else self._finished_view(repo, old_ref)

        def in_scope(p: str) -> bool:
            return p == path or p.startswith(prefix)

        if old_row is None or new_row is None:
            candidates = set()
            for row, chain in ((old_row, old_chain), (new_row, new_chain)):
                if row is not None:
                    candidates.update(p for p, _ in self._walk_files(chain, "/") if in_scope(p))
        else:
            candidates = {p for p in self._changed_between(old_row, new_row) if in_scope(p)}
        changes = []
        for p in sorted(candidates):
            before = self._lookup(old_chain, p) if old_chain else None
            after = self._lookup(new_chain, p) if new_chain else None
            before = before if before and before.kind == FILE else None
            after = after if after and after.kind == FILE else None
            if before is None and after is None:
                continue
            if before is None:
                kind = "added"
            elif after is None:
                kind = "deleted"
            elif before.blob != after.blob:
                kind = "modified"
            else:
                continue
            changes.append(FileChange(
                path=p, change=kind,
                old=self._info(p, before, old_row[0]) if before else None,
                new=self._info(p, after, new_row[0]) if after else None,
            ))
        return changes

    def _changed_between(self, a: tuple, b: tuple) -> set[str]:
        """Paths of files written by the commits on either side of the two commits' common ancestor."""
        side_a, side_b = [a], [b]
        seen_a, seen_b = {a[0]: 0}, {b[0]: 0}
        common = None
        while common is None:
            progressed = False
            for side, seen, other in ((side_a, seen_a, seen_b), (side_b, seen_b, seen_a)):
                tip = side[-1]
                if tip[0] in other:
                    common = tip[0]
                    break
                if tip[3] is not None:
                    nxt = self._commit_row(tip[3])
                    side.append(nxt)
                    seen[nxt[0]] = len(side) - 1
                    progressed = True
            if common is None and not progressed:
                break
        db = self._db()
        paths: set[str] = set()
        for side, seen in ((side_a, seen_a), (side_b, seen_b)):
            stop = seen.get(common, len(side)) if common else len(side)
            for commit in side[:stop]:
                paths.update(r[0] for r in db.execute(
                    "SELECT path FROM entries WHERE line=? AND seq=? AND kind!=? AND substr(path, -1)!='/'",
                    (commit[5], commit[4], DIR)))
        return paths

    # -- maintenance -------------------------------------------------------------
    def fsck(self, *, verify_content: bool = False) -> FsckReport:
        """Check the store's invariants; with ``verify_content`` re-hash every referenced content
        (in the database or a blob file)."""
        report = FsckReport()
        found_inline = found_on_disk = 0
        db = self._db()
        db.execute("BEGIN")  # one consistent snapshot
        try:
            referenced: dict[str, int] = {}
            for blob, size in db.execute(
                "SELECT blob, size FROM entries WHERE kind=? UNION SELECT blob, size FROM staged WHERE op=?",
                (FILE, OP_PUT),
            ):
                referenced[blob] = size
            report.blobs = len(referenced)
            inline = dict(db.execute("SELECT hash, length(data) FROM inline_blobs"))
            for blob, size in referenced.items():
                if blob in inline:  # read from the database, whether or not a blob file exists too
                    found_inline += 1
                    if inline[blob] != size:
                        report.add(f"blob {blob} has {inline[blob]} bytes in the database, {size} expected")
                    elif verify_content and _hash_bytes(self._inline(blob, db)) != blob:
                        report.add(f"blob {blob} content in the database does not match its hash")
                    continue
                blob_file = self.blob_path(blob)
                try:
                    actual = blob_file.stat().st_size
                except FileNotFoundError:
                    report.add(f"blob {blob} is referenced but missing")
                    continue
                found_on_disk += 1
                if actual != size:
                    report.add(f"blob {blob} has {actual} bytes, {size} expected")
                elif verify_content:
                    digest = hashlib.sha256()
                    with open(blob_file, "rb") as f:
                        while chunk := f.read(CHUNK):
                            digest.update(chunk)
                    if digest.hexdigest() != blob:
                        report.add(f"blob {blob} content does not match its hash")
            commits = db.execute(
                "SELECT id, repo_id, parent, seq, line, finished, n_files, size_bytes FROM commits"
            ).fetchall()
            by_id = {c[0]: c for c in commits}
            report.commits = len(commits)
            landed = set()
            for cid, repo_id, parent, seq, line, finished, n_files, size_bytes in commits:
                if finished is None:
                    if seq is not None:
                        report.add(f"open commit {cid} has a sequence number")
                    continue
                landed.add((line, seq))
                if parent is not None:
                    p = by_id.get(parent)
                    if p is None or p[5] is None or p[3] >= seq or p[1] != repo_id:
                        report.add(f"commit {cid} has a missing, open, later or foreign parent {parent}")
                root = db.execute(
                    "SELECT kind, size, files FROM entries WHERE line=? AND dir='' AND path='/' AND seq=?",
                    (line, seq),
                ).fetchone()
                if root is None or root[0] != DIR or (root[1], root[2]) != (size_bytes, n_files):
                    report.add(f"commit {cid} has no root summary matching its size and file count")
            for line, seq, count in db.execute("SELECT line, seq, count(*) FROM entries GROUP BY line, seq"):
                report.entries += count
                if (line, seq) not in landed:
                    report.add(f"{count} entries at line {line} seq {seq} belong to no finished commit")
            for repo_id, name, head in db.execute("SELECT repo_id, name, head FROM branches"):
                if head is not None:
                    c = by_id.get(head)
                    if c is None or c[5] is None or c[1] != repo_id:
                        report.add(f"branch {name} points at a missing, open or foreign commit {head}")
        finally:
            db.execute("COMMIT")
        on_disk = sum(len(os.listdir(self.blob_dir / f"{i:02x}")) for i in range(256))
        report.unreferenced_blobs = max(0, on_disk - found_on_disk) + len(inline) - found_inline
        return report

    def gc(self, *, grace_seconds: float = 3600.0) -> int:
        """Remove contents that nothing refers to; return how many. A blob file nothing refers to (or
        whose content the database holds) goes once it was not written or reused within the grace period.

        The grace period is what keeps a blob file a writer has just stored (and not yet staged)
        safe. Contents in the database need none: each is written with the row that refers to it.
        """
        cutoff = time.time() - grace_seconds
        with self._write() as db:  # no row can come to refer to a content while this runs
            removed = db.execute(
                "DELETE FROM inline_blobs WHERE hash NOT IN (SELECT blob FROM entries WHERE kind=?) "
                "AND hash NOT IN (SELECT blob FROM staged WHERE op=?)", (FILE, OP_PUT)).rowcount
        db = self._db()
        referenced = {b for (b,) in db.execute(
            "SELECT blob FROM entries WHERE kind=? UNION SELECT blob FROM staged WHERE op=?", (FILE, OP_PUT))}
        referenced.difference_update(b for (b,) in db.execute("SELECT hash FROM inline_blobs"))
        for i in range(256):
            folder = self.blob_dir / f"{i:02x}"
            for name in os.listdir(folder):
                if f"{i:02x}{name}" in referenced:
                    continue
                try:
                    if (folder / name).stat().st_mtime < cutoff:
                        (folder / name).unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        for tmp in self.tmp_dir.iterdir():
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink(missing_ok=True)
        return removed


__all__ = ["LocalBackend", "FsckReport", "PfsError"]
