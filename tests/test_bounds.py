"""Caches and logs stay bounded over long runs: the embedded store's commit and chain caches, the
repos listing's commit JSON, the mount content cache (bytes and download locks), Label Studio's log,
the server's malloc arenas."""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cachetools import LRUCache

from jupyterlab_pachls import app, listing
from jupyterlab_pachls.labeling.labelstudio import ManagedLabelStudio, rotate_log, tail_lines
from jupyterlab_pachls.mount.tree import CONTENT_CACHE_ENV, ContentCache
from jupyterlab_pachls.pfs import LocalBackend, local
from jupyterlab_pachls.pfs.errors import InvalidArgument


# -- the embedded store ---------------------------------------------------------------------------
def read_bytes(backend, ref: str, path: str, repo: str = "data") -> bytes:
    return b"".join(backend.read_file(repo, ref, path))


def file_paths(backend, ref: str, repo: str = "data") -> list[str]:
    return sorted(info.path for info in backend.list_dir(repo, ref, "/").items)



def test_every_connection_of_the_store_shares_one_page_cache_budget(tmp_path):
    """Each worker thread reads through its own SQLite connection: per-connection caches alone would
    grow with threads x database size, so every connection carries the process-wide heap limit."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")

    def pragmas(_):
        db = backend._db()
        return db.execute("PRAGMA cache_size").fetchone()[0], db.execute("PRAGMA soft_heap_limit").fetchone()[0]

    with ThreadPoolExecutor(4) as pool:
        seen = set(pool.map(pragmas, range(16)))
    assert seen == {(-local.PAGE_CACHE_KIB, local.SQLITE_HEAP_LIMIT)}
    assert local.SQLITE_HEAP_LIMIT <= 64 << 20
    backend.close()

def open_connections(store: Path) -> int:
    """Connections of this process open on the store's database."""
    def database(connection: sqlite3.Connection) -> str | None:
        try:
            return connection.execute("PRAGMA database_list").fetchone()[2]
        except sqlite3.ProgrammingError:  # closed
            return None

    gc.collect()  # a connection and its statement cache refer to each other
    return sum(1 for o in gc.get_objects() if isinstance(o, sqlite3.Connection)
               and database(o) == str(store / "meta.sqlite"))


def test_a_thread_that_ends_leaves_no_connection_open(tmp_path):
    """Every thread reads through a connection of its own: threads come and go (the server's, a
    kernel's), so a connection must go with its thread, not stay for the store's whole life."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    assert open_connections(backend.root) == 1
    for _ in range(20):
        reader = threading.Thread(target=backend.list_repos)
        reader.start()
        reader.join()
    assert open_connections(backend.root) == 1
    backend.close()


@pytest.fixture
def small_caches(monkeypatch):
    monkeypatch.setattr(local, "COMMIT_CACHE", 20)
    monkeypatch.setattr(local, "CHAIN_CACHE", 20)


def test_commit_and_chain_caches_hold_their_limit_and_keep_the_recent(tmp_path, small_caches):
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    made = []
    for n in range(200):  # 10x the cache size
        with backend.commit("data", "master", message=f"c{n}") as c:
            c.put_file(f"/f{n}.txt", str(n).encode())
        made.append(c.finished.id)
        assert read_bytes(backend, made[-1], f"/f{n}.txt") == str(n).encode()
        assert len(backend._commits) <= 20 and len(backend._chains) <= 20
    # full, not emptied: a dict that empties when full would hold a handful here
    assert len(backend._commits) == 20 and len(backend._chains) == 20
    first = backend.inspect_commit("data", made[0])
    assert made[0] in backend._commits
    for commit_id in made[-25:]:
        backend.inspect_commit("data", commit_id)
    assert made[0] not in backend._commits and made[-1] in backend._commits
    assert backend.inspect_commit("data", made[0]) == first  # evicted values are simply read again
    backend.close()


def test_a_chain_is_read_again_after_another_process_deletes_and_recreates_the_repo(tmp_path):
    """Line ids are reused once the newest lines are deleted: the chain kept for a line must not
    be applied to a new line of the same id (it would show files of another branch)."""
    reader = LocalBackend(tmp_path / "store")
    reader.create_repo("data")
    with reader.commit("data", "master") as c:
        c.put_file("/old-master.txt", b"1")
    first = c.finished.id
    with reader.commit("data", "master") as c:
        c.put_file("/old-master-2.txt", b"2")
    reader.create_branch("data", "side", head=first)
    with reader.commit("data", "side") as c:  # parent is not a line's tip: a second line forking off the first
        c.put_file("/old-side.txt", b"3")
    assert file_paths(reader, "side") == ["/old-master.txt", "/old-side.txt"]

    other = LocalBackend(tmp_path / "store")  # another process on the same store
    other.delete_repo("data")
    other.create_repo("data")
    with other.commit("data", "master") as c:
        c.put_file("/new-master.txt", b"4")
    other.create_branch("data", "side")  # no head: its first commit starts a line of its own
    with other.commit("data", "side") as c:
        c.put_file("/new-side.txt", b"5")
    other.close()

    assert file_paths(reader, "side") == ["/new-side.txt"]
    assert read_bytes(reader, "side", "/new-side.txt") == b"5"
    reader.close()


def test_commit_metadata_edited_by_another_process_is_seen(tmp_path):
    reader = LocalBackend(tmp_path / "store")
    reader.create_repo("data")
    with reader.commit("data", "master") as c:
        c.put_file("/a", b"a")
    assert reader.inspect_commit("data", c.finished.id).metadata == {}
    other = LocalBackend(tmp_path / "store")
    other.set_commit_metadata("data", c.finished.id, {"reviewed": "yes"})
    other.close()
    assert reader.inspect_commit("data", c.finished.id).metadata == {"reviewed": "yes"}
    reader.close()


# -- the repos listing ----------------------------------------------------------------------------
def test_head_json_cache_holds_one_entry_per_branch_and_follows_edits(tmp_path, monkeypatch):
    monkeypatch.setattr(listing, "_HEAD_JSON", LRUCache(10))
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    for n in range(100):  # a stream of commits replaces the branch's entry, never adds one
        with backend.commit("data", "master", message=f"c{n}") as c:
            c.put_file("/a", str(n).encode())
        assert listing.branch_json(backend.inspect_branch("data", "master"))["head"]["message"] == f"c{n}"
        assert len(listing._HEAD_JSON) == 1
    for n in range(20):  # more branches than the limit: the least recently used go
        backend.create_branch("data", f"b{n}", head="master")
        assert listing.branch_json(backend.inspect_branch("data", f"b{n}"))["head"]["id"] == c.finished.id
        assert len(listing._HEAD_JSON) <= 10
    backend.set_commit_metadata("data", c.finished.id, {"k": "v"})
    assert listing.branch_json(backend.inspect_branch("data", "master"))["head"]["metadata"] == {"k": "v"}
    backend.close()


# -- the mount content cache ----------------------------------------------------------------------
@pytest.fixture
def store_files(tmp_path):
    """A store with 100 files of 1 KiB, distinct contents; (backend, commit id, infos)."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    with backend.commit("data", "master") as c:
        c.put_files((f"/f{n:03d}", bytes([n]) * 1024) for n in range(100))
    infos = [backend.inspect_file("data", c.finished.id, f"/f{n:03d}") for n in range(100)]
    yield backend, c.finished.id, infos
    backend.close()


def _bytes_on_disk(root: Path) -> int:
    return sum(p.stat().st_size for top in root.iterdir() if len(top.name) == 2 for p in top.iterdir())


def test_content_cache_stays_under_its_byte_limit_evicting_least_recently_used(tmp_path, store_files):
    backend, commit, infos = store_files
    cache = ContentCache(tmp_path / "cache", max_bytes=10 * 1024)
    for round_ in range(3):
        for info in infos:
            path = cache.fetch(backend, "data", commit, info)
            assert path.read_bytes() == read_bytes(backend, commit, info.path)
            assert cache.cached_bytes() <= 10 * 1024 and _bytes_on_disk(cache.root) <= 10 * 1024
    assert cache.cached_bytes() == 10 * 1024  # full, not emptied
    # least recently used goes first: f090 read again stays while ten newer files arrive
    recent = cache.fetch(backend, "data", commit, infos[90])
    for info in infos[:9]:
        cache.fetch(backend, "data", commit, info)
    assert recent.exists() and not cache.path(infos[91].hash).exists()

    # a new cache on the same directory with a smaller limit trims it, oldest downloads first
    again = ContentCache(tmp_path / "cache", max_bytes=4 * 1024)
    again.fetch(backend, "data", commit, infos[8])
    assert again.cached_bytes() <= 4 * 1024 and _bytes_on_disk(again.root) <= 4 * 1024


def test_content_cache_download_locks_do_not_pile_up(tmp_path, store_files):
    backend, commit, infos = store_files
    cache = ContentCache(tmp_path / "cache", max_bytes=50 * 1024)
    with ThreadPoolExecutor(8) as pool:  # every file asked for by two readers at once, many times
        paths = list(pool.map(lambda info: cache.fetch(backend, "data", commit, info), infos * 6))
    assert all(p.name == info.hash[2:] for p, info in zip(paths, infos * 6))
    assert cache._downloads == {}
    assert cache.cached_bytes() <= 50 * 1024 and _bytes_on_disk(cache.root) <= 50 * 1024


def test_content_cache_limit_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(CONTENT_CACHE_ENV, "lots")
    with pytest.raises(InvalidArgument, match=CONTENT_CACHE_ENV):
        ContentCache(tmp_path / "cache")
    monkeypatch.setenv(CONTENT_CACHE_ENV, "2048")
    assert ContentCache(tmp_path / "cache").max_bytes == 2048
    with pytest.raises(InvalidArgument):
        ContentCache(tmp_path / "cache", max_bytes=0)


# -- Label Studio's log ---------------------------------------------------------------------------
def test_log_tail_of_a_50_mib_log_is_its_last_lines_masked(tmp_path):
    studio = ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs")
    line = "x" * 100
    with open(studio.log_path, "w") as log:
        for n in range(50 * 1024 * 1024 // 110):
            log.write(f"{n:08d} {line}\n")
        log.write(f"last with {studio.credentials.token}\n")
    assert studio.log_path.stat().st_size > 50 << 20
    tail = studio.log_tail(3).splitlines()
    assert tail[-1] == "last with ********"
    assert tail[0].endswith(line) and int(tail[1].split()[0]) == int(tail[0].split()[0]) + 1
    assert len(studio.log_tail(10_000).splitlines()) == 10_000


def test_log_tail_reads_from_the_end_only(tmp_path):
    """A (sparse) log of 1 TiB: read whole it could never be answered; its tail comes back."""
    path = tmp_path / "huge.log"
    with open(path, "wb") as log:
        log.truncate(1 << 40)
        log.seek(0, os.SEEK_END)
        log.write(b"one\ntwo\nthree\n")
    assert tail_lines(path, 2) == ["two", "three"]
    assert tail_lines(path, 2, max_bytes=8) == ["three"]  # a line cut by the limit is left out


def test_log_tail_continues_into_the_rotated_log(tmp_path):
    studio = ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs")
    studio.log_path.write_text("".join(f"old {n}\n" for n in range(10)))
    assert rotate_log(studio.log_path, max_bytes=10)
    studio.log_path.write_text("new 0\nnew 1\n")
    assert studio.log_tail(4).splitlines() == ["old 8", "old 9", "new 0", "new 1"]


WRITER = textwrap.dedent("""
    import sys, time
    n = 0
    while True:
        sys.stdout.write(f"line {n:09d} " + "y" * 90 + "\\n")
        sys.stdout.flush()
        n += 1
        if n % 100 == 0:
            time.sleep(0.01)
""")


def test_a_log_written_by_a_running_process_is_rotated_in_place(tmp_path):
    """The process is given the log as Label Studio is (an O_APPEND descriptor as its stdout):
    after each rotation its next lines land at the start of the emptied file, and the log and
    the one older file stay near the limit however long it writes."""
    path = tmp_path / "ls.log"
    log = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    writer = subprocess.Popen([sys.executable, "-c", WRITER], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        rotations = 0
        deadline = time.monotonic() + 120
        while rotations < 5 and time.monotonic() < deadline:
            if rotate_log(path, max_bytes=256 << 10):
                rotations += 1
            time.sleep(0.05)
        assert rotations == 5
        deadline = time.monotonic() + 30  # generous: the writer's next line, however loaded the host
        while path.stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size < 8 << 20
        older = path.with_name("ls.log.1")
        assert older.exists() and oct(older.stat().st_mode & 0o777) == "0o600"
        head = path.read_bytes()[:200]
        assert head.startswith(b"line ") and b"\0" not in head  # written at the new end, no hole before
    finally:
        writer.kill()
        writer.wait()


def test_the_watchdog_keeps_the_log_bounded(tmp_path):
    """The loop that watches Label Studio rotates its log (stand-in: a process that only writes
    lines, watched the way Label Studio is; the rotation does not care what writes)."""
    studio = ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs")
    studio.log_max_bytes = 64 << 10
    log = os.fdopen(os.open(studio.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    studio._process = subprocess.Popen([sys.executable, "-c", WRITER], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    studio._state = "running"
    watchdog = threading.Thread(target=studio._watch, daemon=True)
    watchdog.start()
    try:
        deadline = time.monotonic() + 60
        while not studio.log_path.with_name("label-studio.log.1").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert studio.log_path.with_name("label-studio.log.1").exists()
        assert studio.log_path.stat().st_size < 16 << 20
    finally:
        studio._stopping = True
        studio._process.kill()
        studio._process.wait()
        watchdog.join(10)


# -- the Pachyderm backend's branch locks ---------------------------------------------------------
def test_branch_locks_exclude_per_branch_and_are_dropped_when_free():
    from jupyterlab_pachls.pfs.pachyderm.landing import BranchLocks

    locks = BranchLocks()
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with locks("default/data", "master"):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        inside.wait(10)
        with locks("default/data", "master"):
            order.append("second in")

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(first), pool.submit(second)]
        inside.wait(10)
        with locks("default/data", "other"):  # another branch is not held up
            order.append("other branch")
        time.sleep(0.2)  # give the second a chance to (wrongly) get in
        release.set()
        for future in futures:
            future.result(10)
    assert order == ["first in", "other branch", "first out", "second in"]
    assert locks._locks == {}  # landed on three branches: no lock kept for any


# -- the server process's malloc ------------------------------------------------------------------
ARENAS_OF_THREADS = textwrap.dedent("""
    import ctypes, sys, threading

    if sys.argv[1] == "limit":
        from jupyterlab_pachls.app import limit_malloc_arenas
        assert limit_malloc_arenas()
    together = threading.Barrier(12)

    def work():
        kept = [bytes(4096) for _ in range(100)]  # malloc's sizes, not Python's small-object pool
        together.wait()  # all alive at once: none can take over an arena another thread left

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL("libc.so.6")
    libc.open_memstream.restype = ctypes.c_void_p
    libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    text, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(ctypes.string_at(text, size.value).decode().count("<heap nr="))
""")


def arenas_after_12_threads(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    return int(subprocess.run([sys.executable, "-c", ARENAS_OF_THREADS, mode], env=env, capture_output=True,
                              text=True, timeout=60, check=True).stdout)


@pytest.mark.skipif(not (sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION")), reason="glibc's malloc arenas")
def test_the_servers_threads_share_two_malloc_arenas(monkeypatch):
    """glibc gives each new thread an arena of its own (up to 8 per core), each keeping the free
    memory its threads left: the server's resident memory climbed as each met its own peak."""
    assert arenas_after_12_threads("default") > app.MALLOC_ARENAS  # what the limit changes
    assert arenas_after_12_threads("limit") == app.MALLOC_ARENAS
    monkeypatch.setenv("MALLOC_ARENA_MAX", "3")  # the environment's own choice wins
    assert app.limit_malloc_arenas() is False


@pytest.fixture
def arena_limits(monkeypatch):
    """The calls of ``limit_malloc_arenas`` (recorded, not made: this is the test process)."""
    calls = []
    monkeypatch.setattr(app, "limit_malloc_arenas", lambda *args: calls.append(args) or True)
    return calls


async def test_the_server_limits_malloc_arenas_as_it_starts(arena_limits, pachls_state):
    assert arena_limits == [()]
