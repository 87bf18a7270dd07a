"""Closing the embedded store while other threads read and write it (what a backend switch or a server
shutdown does while polls and commits still run): every one of them ends with the typed ``Unavailable``
or finishes, the process survives, and what was being committed landed whole or not at all.

The trials run in a child process: closing a SQLite connection under another thread's statement
crashes the interpreter (segfault), and a crash must fail this test, not end the test run.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_bounds import open_connections

from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.errors import Unavailable

TRIALS = 6
FILES = 600  # a tree big enough that a reader is mid-walk when the store closes
COMMIT_FILES = 40

CHILD = textwrap.dedent(
    """
    import json, sys, threading
    from jupyterlab_pachls.pfs import LocalBackend
    from jupyterlab_pachls.pfs.errors import Unavailable

    store, trials, commit_files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def reader(backend, running, outcomes):
        try:
            while True:
                for _info, chunks in backend.read_tree("data", "master", "/"):
                    running.set()
                    for _ in chunks or ():
                        pass
                backend.list_dir("data", "master", "/d")
        except Unavailable as exc:
            outcomes.append("unavailable: " + exc.message)
        except BaseException as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")

    def writer(backend, running, outcomes, trial):
        n = 0
        try:
            while True:
                n += 1
                with backend.commit("data", "w", message=f"{trial}-{n}") as c:
                    c.put_files((f"/w/{i}.txt", f"{trial}-{n}-{i}".encode()) for i in range(commit_files))
                running.set()
        except Unavailable as exc:
            outcomes.append("unavailable: " + exc.message)
        except BaseException as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")

    results = []
    for trial in range(trials):
        backend = LocalBackend(store)
        outcomes, threads, started = [], [], []
        for work in (reader, reader, reader, writer):
            running = threading.Event()
            args = (backend, running, outcomes) + ((trial,) if work is writer else ())
            threads.append(threading.Thread(target=work, args=args))
            started.append(running)
            threads[-1].start()
        for running in started:
            running.wait(30)
        backend.close()
        for thread in threads:
            thread.join(30)
        results.append(outcomes)
    print(json.dumps(results))
    """
)


def test_closing_the_store_while_threads_read_and_commit_stops_them_with_unavailable(tmp_path):
    store = tmp_path / "store"
    backend = LocalBackend(store)
    backend.create_repo("data")
    with backend.commit("data", "master", message="tree") as c:
        c.put_files((f"/d/{i:04}.txt", f"file {i}".encode()) for i in range(FILES))
    backend.create_branch("data", "w", head=backend.inspect_branch("data", "master").head.id)
    backend.close()

    child = subprocess.run([sys.executable, "-c", CHILD, str(store), str(TRIALS), str(COMMIT_FILES)],
                           check=False, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, f"the process died (code {child.returncode}):\n{child.stderr[-3000:]}"
    results = json.loads(child.stdout)
    assert len(results) == TRIALS
    for outcomes in results:  # each of the four threads stopped, each with the typed error
        assert outcomes == ["unavailable: the store is closed"] * 4, outcomes

    reopened = LocalBackend(store)
    try:
        assert reopened.fsck().ok
        # a commit the close cut short stays open, as a killed process leaves it: never on the branch
        landed = reopened.list_commits("data", "w", limit=1000)[:-1]
        assert len(landed) >= TRIALS
        for commit in landed:  # each landed commit is whole
            assert commit.finished is not None
            trial_and_n = commit.message
            files = reopened.list_dir("data", commit.id, "/w", limit=1000).items
            assert len(files) == COMMIT_FILES, trial_and_n
            first = b"".join(reopened.read_file("data", commit.id, "/w/0.txt"))
            assert first == f"{trial_and_n}-0".encode()
    finally:
        reopened.close()



def store_files_open(store) -> list[str]:
    """The store's database files (meta.sqlite, its -wal and -shm) this process has open."""
    database = str(store / "meta.sqlite")
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (listdir's own descriptor)
            continue
        if target.startswith(database):
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists open files through /proc")
def test_a_store_closed_by_its_only_thread_lets_go_of_its_files_at_once(tmp_path):
    """The thread that closes the store has its own connection, which no other thread uses: it is
    closed there and then (the last connection to close checkpoints the WAL), not left to a garbage
    collection that may come much later."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    with backend.commit("data", "master") as c:
        c.put_file("/a.txt", b"a")
    assert store_files_open(backend.root)
    collecting = gc.isenabled()
    gc.disable()  # only what close does counts
    try:
        backend.close()
        assert store_files_open(backend.root) == []
    finally:
        if collecting:
            gc.enable()
    assert not (backend.root / "meta.sqlite-wal").exists()  # checkpointed and removed by the last close


def test_a_thread_that_opens_its_connection_as_the_store_closes_is_refused(tmp_path, monkeypatch):
    """A thread's first call passed the closed check and was opening its connection when close ran:
    the call is refused like any after close, and its new connection does not stay open (it was kept
    by the closed store, for as long as the store object lived)."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    connect, main = sqlite3.connect, threading.current_thread()

    def connect_while_closing(*args, **kwargs):
        connection = connect(*args, **kwargs)
        if threading.current_thread() is not main:
            backend.close()  # close runs between the thread's check and its use of the connection
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect_while_closing)
    outcome = []

    def first_call():
        try:
            outcome.append(backend.list_repos())
        except Unavailable as exc:
            outcome.append(exc.message)

    thread = threading.Thread(target=first_call)
    thread.start()
    thread.join()
    monkeypatch.undo()
    assert outcome == ["the store is closed"]
    assert open_connections(backend.root) == 0


def test_a_listing_read_on_another_thread_sees_only_what_is_committed(tmp_path):
    """A download is read a piece at a time, each piece on whichever pool thread is free (the archive
    and file routes), so a listing begun on one thread goes on on another. It must read through the
    connection of the thread reading it: the connection of the thread that began it may be inside a
    transaction of its own by then (a commit landing), whose rows are not committed (and may roll back)."""
    from jupyterlab_pachls.pfs.backend import DEFAULT_PAGE

    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    paths = [f"/{i:04}.txt" for i in range(DEFAULT_PAGE + 10)]  # a second page of the root's rows
    with backend.commit("data", "master") as c:
        c.put_files((path, path.encode()) for path in paths)
    tree = backend.read_tree("data", "master", "/")
    first, _chunks = next(tree)  # the root's first page, read on this thread
    db = backend._db()
    db.execute("BEGIN IMMEDIATE")  # this thread's own transaction, not committed: a stand-in for a landing
    db.execute("DELETE FROM entries")
    try:
        with ThreadPoolExecutor(1) as pool:
            rest = pool.submit(lambda: [info.path for info, _chunks in tree]).result()
    finally:
        db.execute("ROLLBACK")
    assert [first.path, *rest] == paths
    backend.close()
