"""A mount's status and the mount list answer while that mount's commit is stuck on the cluster.

The mount runs on ``PachydermBackend`` against the package's Pachyderm-API gRPC server. Once the
commit's upload (``ModifyFile``) arrives, the server stops answering: that call and every later
one are held (as by a cluster that stalls mid-commit) until the test lets them go. Meanwhile
``status`` and ``list`` must answer, showing the commit in progress with what was known before it
(staged changes, commits behind), without asking the stalled cluster; once the cluster answers
again the commit lands and the status is fresh.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount import manager as manager_module
from jupyterlab_pachls.mount.fusefs import fuse_available
from jupyterlab_pachls.pfs import LocalBackend, open_backend
from stoppable_cluster import Cluster

ANSWERED = 30.0  # generous bound for a call that must not wait for the stalled cluster
HOLD_LIMIT = 120.0  # a held call is let go after this long whatever happens (no hung test run)
HANDLER_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class StallFrom(grpc.ServerInterceptor):
    """From the first call of ``method`` on, hold every call before the served backend sees it,
    until ``release`` is set."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.stalled = threading.Event()  # the first call of ``method`` arrived
        self.release = threading.Event()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if details.method.endswith("/" + self.method):
            self.stalled.set()
        if handler is None or not self.stalled.is_set() or self.release.is_set():
            return handler
        for kind in HANDLER_KINDS:
            inner = getattr(handler, kind)
            if inner is not None:
                break

        def held(request, context):
            self.release.wait(HOLD_LIMIT)
            return inner(request, context)

        make = getattr(grpc, f"{kind}_rpc_method_handler")
        return make(held, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "served")
    yield c
    c.close()


@pytest.fixture
def backend(cluster):
    b = open_backend({"kind": "pachyderm", "pachd_address": cluster.address, "connect_timeout": 2.0})
    yield b
    b.close()


@pytest.fixture
def manager(backend, dirs, presentation):
    made = MountManager(backend, dirs[0], dirs[1], fuse=True if presentation == "fuse" else None)
    yield made
    made.close()


def in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_status_and_list_answer_while_the_mounts_commit_waits_for_the_cluster(cluster, backend, manager):
    backend.create_repo("r")
    with backend.commit("r", "master", message="base") as c:
        c.put_files([("/keep.txt", b"keep"), ("/old.txt", b"old"), ("/gone.txt", b"gone")])
    manager.mount("r", "master", mode="rw", name="w")
    mp = Path(manager.status("w").mountpoint)
    (mp / "new.txt").write_bytes(b"new")
    (mp / "old.txt").write_bytes(b"changed")
    (mp / "gone.txt").unlink()
    with backend.commit("r", "master", message="another writer's") as c:
        c.put_file("/theirs.txt", b"theirs")
    before = manager.status("w")
    assert (before.state, before.pending, before.behind, before.message) == ("mounted", 3, 1, "")

    stall = StallFrom("ModifyFile")
    cluster.stop()
    cluster.start(stall)
    committing, committed = in_thread(lambda: manager.commit("w", message="mine", author="ana"))
    try:
        assert stall.stalled.wait(ANSWERED), "the commit never reached its upload"
        asking, asked = in_thread(lambda: (manager.status("w"), manager.list()))
        asking.join(ANSWERED)
        assert not asking.is_alive(), "status waited for the stalled commit"
        assert "error" not in asked, asked.get("error")
        status, listed = asked["value"]
        assert listed == [status]
        assert status.state == "committing" and status.message == ""
        assert (status.base, status.pending, status.behind) == (before.base, 3, 1)
        assert committing.is_alive(), "the commit was not held meanwhile"
    finally:
        stall.release.set()
        committing.join(HOLD_LIMIT)
    assert "error" not in committed, committed.get("error")
    landed = committed["value"]
    after = manager.status("w")
    assert (after.state, after.base, after.pending, after.behind) == ("mounted", landed.id, 0, 0)
    assert {i.path for i in backend.walk("r", "master") if not i.is_dir} == \
        {"/keep.txt", "/old.txt", "/new.txt", "/theirs.txt"}


def test_status_follows_every_change_and_scans_a_no_fuse_mount_only_after_one(tmp_path, dirs, monkeypatch):
    """A no-FUSE read-write mount: the pending count is right right after any change made in the
    directory, and a poll while nothing changed does not walk the directory again."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("r")
    with backend.commit("r", "master") as c:
        c.put_files([("/a.txt", b"a"), ("/dir/b.txt", b"b"), ("/dir/c.txt", b"c")])
    manager = MountManager(backend, dirs[0], dirs[1])
    try:
        manager.mount("r", mode="rw", name="w")
        workspace = manager._mounts["w"].workspace
        scans = []
        real_scan = workspace._scan

        def counted_scan():
            scans.append(1)
            yield from real_scan()

        monkeypatch.setattr(workspace, "_scan", counted_scan)
        mp = Path(manager.status("w").mountpoint)

        def pending() -> int:
            status = manager.status("w")
            assert status.pending == len(manager.changes("w").changes)  # the count agrees with a full scan
            return status.pending

        assert pending() == 0
        steps = [
            (lambda: (mp / "new.txt").write_bytes(b"new"), 1),
            (lambda: (mp / "a.txt").open("r+b").write(b"A"), 2),  # in place, same size
            (lambda: os.truncate(mp / "dir/b.txt", 0), 3),
            (lambda: (mp / "dir/c.txt").open("ab").write(b"more"), 4),
            (lambda: (mp / "dir/c.txt").write_bytes(b"c"), 3),  # back to what was committed
            (lambda: ((mp / "deep/er").mkdir(parents=True), (mp / "deep/er/d.txt").write_bytes(b"d")), 4),
            (lambda: os.rename(mp / "deep/er/d.txt", mp / "deep/e.txt"), 4),
            (lambda: (mp / "deep/e.txt").open("ab").write(b"e"), 4),
            (lambda: (mp / "new.txt").unlink(), 3),
            (lambda: os.link(mp / "a.txt", mp / "deep/hard.txt"), 3),  # two links: unsupported, a.txt unseen
        ]
        for change, expected in steps:
            change()
            assert pending() == expected
        scans.clear()
        for _ in range(5):
            assert manager.status("w").pending == 3
        assert scans == [], "an unchanged mount was walked again"
    finally:
        manager.close()
        backend.close()


def test_a_new_mount_is_locked_before_anyone_can_find_it(tmp_path, dirs, monkeypatch):
    """From the moment a new mount can be found, its lock is held until it is presented: a commit,
    refresh or unmount of it waits meanwhile."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("r")
    manager = MountManager(backend, dirs[0], dirs[1])
    taken_by_another_thread = []
    real_disk_space = manager_module.disk_space

    @contextmanager
    def disk_space_looking_first(what, name):
        found = manager._mounts[name]  # published: others can find it from here on

        def try_lock() -> bool:
            taken = found.lock.acquire(blocking=False)
            if taken:
                found.lock.release()
            return taken

        thread, out = in_thread(try_lock)
        thread.join(ANSWERED)
        taken_by_another_thread.append(out["value"])
        with real_disk_space(what, name):
            yield

    monkeypatch.setattr(manager_module, "disk_space", disk_space_looking_first)
    try:
        manager.mount("r", mode="rw")
        assert taken_by_another_thread == [False]
    finally:
        manager.close()
        backend.close()


def test_status_answers_while_a_fuse_copy_up_holds_the_overlay(backend, tmp_path, dirs, monkeypatch):
    """A copy-up (a big file downloaded before its first write) holds the overlay's lock: status answers
    meanwhile with the count found last."""
    monkeypatch.delenv("PACHLS_NO_FUSE", raising=False)
    ok, why = fuse_available()
    if not ok:
        pytest.skip(f"FUSE not usable here: {why}")
    backend.create_repo("r")
    manager = MountManager(backend, dirs[0], dirs[1], fuse=True)
    try:
        manager.mount("r", mode="rw", name="w")
        (Path(manager.status("w").mountpoint) / "new.txt").write_bytes(b"new")
        assert manager.status("w").pending == 1
        overlay = manager._mounts["w"].overlay
        held, release = threading.Event(), threading.Event()

        def hold():
            with overlay.lock:
                held.set()
                release.wait(HOLD_LIMIT)

        holder, _ = in_thread(hold)
        try:
            assert held.wait(ANSWERED)
            asked, out = in_thread(lambda: manager.status("w"))
            asked.join(ANSWERED)
            assert not asked.is_alive(), "status waited for the copy-up"
            assert out["value"].pending == 1
        finally:
            release.set()
            holder.join(ANSWERED)
    finally:
        manager.close()
