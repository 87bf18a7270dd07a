"""What only the embedded store promises: content addressing, fsck, gc, and surviving SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from jupyterlab_pachls.pfs import LocalBackend, NotFound

WRITER = textwrap.dedent(
    """
    import sys
    from jupyterlab_pachls.pfs import LocalBackend
    store, worker = sys.argv[1], sys.argv[2]
    backend = LocalBackend(store)
    n = 0
    while True:
        n += 1
        with backend.commit("data", "master", message=f"{worker}-{n}") as c:
            # many files per commit, some rewritten and deleted, so a kill lands mid-commit
            c.put_files((f"/{worker}/{n % 7}/{i}.json", f"{worker}-{n}-{i}".encode() * 50) for i in range(300))
            if n > 1:
                c.delete_file(f"/{worker}/{(n - 1) % 7}/0.json")
        print(n, flush=True)
    """
)


@pytest.fixture
def store(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    yield backend
    backend.close()


@pytest.fixture
def file_store(tmp_path):
    """Every content a blob file, small ones too (tests/pfs/test_inline_blobs.py: the database's)."""
    backend = LocalBackend(tmp_path / "store", inline_max=0)
    yield backend
    backend.close()


def test_identical_content_is_stored_once(file_store):
    store = file_store
    store.create_repo("r")
    with store.commit("r", "master") as c:
        for i in range(20):
            c.put_file(f"/copy/{i}", b"same bytes")
    blobs = [p for p in store.blob_dir.rglob("*") if p.is_file()]
    assert len(blobs) == 1
    info = store.inspect_file("r", "master", "/copy/7")
    assert store.blob_path(info.hash).read_bytes() == b"same bytes" and info.size == 10


def test_fsck_passes_on_a_healthy_store_and_finds_damage(file_store):
    store = file_store
    store.create_repo("r")
    with store.commit("r", "master") as c:
        c.put_file("/a", b"alpha")
        c.put_file("/b", b"beta")
    assert store.fsck(verify_content=True).ok
    path = store.blob_path(store.inspect_file("r", "master", "/a").hash)
    path.write_bytes(b"alphx")
    report = store.fsck(verify_content=True)
    assert not report.ok and "does not match its hash" in report.problems[0]
    path.unlink()
    report = store.fsck()
    assert not report.ok and "missing" in report.problems[0]


def test_gc_removes_only_unreferenced_blobs(file_store):
    store = file_store
    store.create_repo("keep")
    store.create_repo("drop")
    with store.commit("keep", "master") as c:
        c.put_file("/k", b"keep me")
    with store.commit("drop", "master") as c:
        c.put_file("/d", b"drop me")
    store.delete_repo("drop")
    assert store.gc(grace_seconds=3600) == 0  # too recent: a writer may be about to use it
    assert store.fsck().unreferenced_blobs == 1
    assert store.gc(grace_seconds=-1) == 1
    assert store.get_file("keep", "master", "/k") == b"keep me"
    assert store.fsck(verify_content=True).ok


def test_store_is_shared_by_two_backends_on_one_directory(tmp_path):
    a, b = LocalBackend(tmp_path / "s"), LocalBackend(tmp_path / "s")
    a.create_repo("r")
    with b.commit("r", "master") as c:
        c.put_file("/x", b"x")
    assert a.get_file("r", "master", "/x") == b"x"
    a.close()
    b.close()


def test_unusable_store_directory_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    from jupyterlab_pachls.pfs import Unavailable

    with pytest.raises(Unavailable):
        LocalBackend(blocker / "store")


def _writer(store_dir, worker):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store_dir), worker],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )


@pytest.mark.parametrize("trial", range(6))
def test_sigkill_at_any_instant_leaves_the_store_consistent(tmp_path, trial):
    store_dir = tmp_path / "store"
    setup = LocalBackend(store_dir)
    setup.create_repo("data")
    setup.close()
    writers = [_writer(store_dir, f"w{k}") for k in range(2)]
    # wait for the first commit of each writer, then kill at a random instant
    for w in writers:
        assert w.stdout.readline().strip() == "1", w.stderr.read()
    time.sleep(random.Random(trial).uniform(0.05, 1.5))
    for w in writers:
        w.send_signal(signal.SIGKILL)
    for w in writers:
        w.wait(30)
        assert w.returncode == -signal.SIGKILL

    backend = LocalBackend(store_dir)
    report = backend.fsck(verify_content=True)
    assert report.ok, report.problems
    history = backend.list_commits("data", "master", limit=10_000)
    assert len(history) >= 2
    # every landed commit is whole: its own 300 files carry its number
    for commit in history[:5]:
        worker, n = commit.message.split("-")
        n = int(n)
        files = {i.path: i for i in backend.walk("data", commit.id, f"/{worker}/{n % 7}") if not i.is_dir}
        own = [p for p in files if backend.get_file("data", commit.id, p).startswith(f"{worker}-{n}-".encode())]
        expected = 300 - (1 if n > 1 and (n - 1) % 7 == n % 7 else 0)
        assert len(own) == expected
    # the store keeps working after the crash
    with backend.commit("data", "master", message="after") as c:
        c.put_file("/after", b"ok")
    assert backend.get_file("data", "master", "/after") == b"ok"
    assert backend.fsck().ok
    backend.close()


def test_an_open_commit_of_a_killed_writer_can_be_aborted(tmp_path):
    store_dir = tmp_path / "store"
    backend = LocalBackend(store_dir)
    backend.create_repo("data")
    script = textwrap.dedent(
        """
        import sys, time
        from jupyterlab_pachls.pfs import LocalBackend
        b = LocalBackend(sys.argv[1])
        c = b.start_commit("data", "master")
        b.put_files(c, [(f"/{i}", b"x" * i) for i in range(5000)])
        print(c.id, flush=True)
        time.sleep(60)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", script, str(store_dir)], stdout=subprocess.PIPE, text=True, env=env)
    commit_id = proc.stdout.readline().strip()
    proc.kill()
    proc.wait()
    opened = backend.inspect_commit("data", commit_id)
    assert opened.is_open
    assert backend.fsck().ok
    backend.abort_commit(opened)
    with pytest.raises(NotFound):
        backend.inspect_commit("data", commit_id)
    backend.close()


def _files(store, ref):
    return {i.path: store.get_file("data", ref, i.path) for i in store.walk("data", ref) if not i.is_dir}


def test_squash_folds_a_commit_into_its_child_and_every_view_stays_whole(store):
    store.create_repo("data")
    with store.commit("data", "master") as c:
        c.put_files([("/a", b"1"), ("/d/b", b"1")])
    first = c.finished
    with store.commit("data", "master") as c:
        c.put_files([("/a", b"2"), ("/d/c", b"2")])
    middle = c.finished
    with store.commit("data", "master") as c:
        c.delete_file("/d/b")
    last = c.finished
    before = _files(store, last.id)
    store.squash_commit("data", middle.id)
    assert _files(store, last.id) == before == {"/a": b"2", "/d/c": b"2"}
    assert _files(store, first.id) == {"/a": b"1", "/d/b": b"1"}
    assert store.inspect_commit("data", last.id).parent == first.id
    assert {ch.path for ch in store.diff("data", first.id, last.id)} == {"/a", "/d/b", "/d/c"}
    with pytest.raises(NotFound):
        store.inspect_commit("data", middle.id)
    assert store.fsck(verify_content=True).ok


def test_dropping_a_head_commit_moves_its_branches_back(store):
    store.create_repo("data")
    with store.commit("data", "master") as c:
        c.put_file("/a", b"1")
    first = c.finished
    store.create_branch("data", "copy", head=first.id)
    with store.commit("data", "copy") as c:  # forks a new line of history off the first commit
        c.put_file("/b", b"fork")
    fork = c.finished
    with store.commit("data", "master") as c:
        c.put_file("/a", b"2")
    second = c.finished
    store.drop_finished_commit("data", fork.id)
    store.drop_finished_commit("data", second.id)
    assert store.inspect_branch("data", "copy").head.id == first.id
    assert store.inspect_branch("data", "master").head.id == first.id
    assert _files(store, "master") == {"/a": b"1"}
    with store.commit("data", "master") as c:  # history goes on from what is left
        c.put_file("/c", b"3")
    assert _files(store, "master") == {"/a": b"1", "/c": b"3"}
    assert store.fsck().ok
    store.drop_finished_commit("data", c.finished.id)
    store.drop_finished_commit("data", first.id)  # no parent: the branches get an empty AUTO commit
    head = store.inspect_branch("data", "master").head
    assert head.origin == "AUTO" and _files(store, "master") == {}
    assert store.inspect_branch("data", "copy").head.id == head.id
    assert store.fsck().ok


def test_a_waiter_wakes_when_a_commit_lands(store):
    import threading

    store.create_repo("data")
    token = store.change_token()
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_change(token, 60)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()
    with store.commit("data", "master") as c:
        c.put_file("/a", b"1")
    waiter.join(30)
    assert woke and woke[0] != token
