"""Crash trials: the Jupyter server SIGKILLed while a read-write mount commits (FUSE and no-FUSE).

``test_crash_trials`` runs a few random trials per presentation against a real ``jupyter server``
subprocess (what is checked: ``tests/crashtrial.py``; the long variant is ``stress/crash_trials.py``).
``test_killed_at`` kills a mount server at fixed points of a commit (a real SIGKILL of a real
process, right after the backend call returns): the next manager must settle what it finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from crashtrial import disk_tree, run_mount_trials
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount.fusefs import fuse_available, fuse_mounts, unmount
from jupyterlab_pachls.pfs import LocalBackend, open_backend

PHASES = ["early", "random", "late", "random"]  # as the request goes out, around the landing, after the answer


def need_fuse(mode: str) -> None:
    if mode == "fuse":
        ok, why = fuse_available()
        if not ok:
            pytest.skip(f"FUSE is not usable here: {why}")


@pytest.mark.parametrize("mode", ["fuse", "nofuse"])
def test_crash_trials(tmp_path, mode):
    need_fuse(mode)
    stats = run_mount_trials(tmp_path, mode, len(PHASES), seed=7, phases=PHASES)
    print(stats.figures())
    print(f"{mode}: {stats.summary()}")
    assert stats.trials == len(PHASES)
    assert stats.problems == []
    assert (stats.corrupt, stats.lost) == (0, 0)
    assert stats.landed >= 1 and stats.absent >= 1  # "late" lands; "early" cannot have


CRASHING_SERVER = textwrap.dedent("""
    import json, os, signal, sys
    from jupyterlab_pachls.mount import MountManager
    from jupyterlab_pachls.pfs import open_backend
    spec, mount_dir, state_dir, fuse, point = sys.argv[1:6]
    backend = open_backend(json.loads(spec))
    original = getattr(backend, point)

    def crash(*args, **kwargs):
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(backend, point, crash)
    manager = MountManager(backend, mount_dir, state_dir, fuse=fuse == "fuse")
    print("ready", flush=True)
    sys.stdin.readline()
    manager.commit("data", "the crashing commit", "ann")
    print("survived", flush=True)
""")

BASE = {"/keep.txt": b"keep", "/change.txt": b"old", "/gone.txt": b"gone", "/dir/old.txt": b"old in dir"}
STAGED = {"/keep.txt": b"keep", "/change.txt": b"new", "/dir/old.txt": b"old in dir", "/dir/new.txt": b"new in dir",
          "/added.bin": bytes(range(256)) * 400}


@pytest.fixture
def store_and_spec(request, tmp_path):
    """(the embedded store underneath, the backend spec the mount server uses): the store itself, or
    the Pachyderm backend over real gRPC to the Pachyderm-API server serving it (landing makes a new id)."""
    store = LocalBackend(tmp_path / "store")
    if request.param == "local":
        yield store, {"kind": "local", "path": str(tmp_path / "store")}
    else:
        from jupyterlab_pachls.pfs.server import make_server

        server, port = make_server(store, "127.0.0.1:0")
        try:
            yield store, {"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"}
        finally:
            server.stop(grace=None).wait()
    store.close()


@pytest.mark.parametrize("store_and_spec,point", [
    ("local", "start_commit"), ("local", "put_files"), ("local", "finish_commit"),
    ("pachyderm", "put_files"), ("pachyderm", "finish_commit")], indirect=["store_and_spec"])
@pytest.mark.parametrize("mode", ["fuse", "nofuse"])
def test_killed_at(tmp_path, mode, point, store_and_spec):
    """Killed right after ``point`` returned: after ``start_commit`` or ``put_files`` nothing landed and
    the open commit is aborted; after ``finish_commit`` the commit landed and the mount follows it.
    Either way every staged file is still in the mount and the pending list is exactly what did not land."""
    need_fuse(mode)
    store, spec = store_and_spec
    mount_dir, state_dir = tmp_path / "pfs", tmp_path / "state"
    backend = open_backend(spec)
    backend.create_repo("data")
    with backend.commit("data", "master", message="base") as base:
        for path, data in BASE.items():
            base.put_file(path, data)
    with MountManager(backend, mount_dir, state_dir, fuse=mode == "fuse") as manager:
        manager.mount("data", mode="rw")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_SERVER, json.dumps(spec), str(mount_dir), str(state_dir),
                             mode, point], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        root = mount_dir / "data"
        (root / "change.txt").write_bytes(STAGED["/change.txt"])
        (root / "dir/new.txt").write_bytes(STAGED["/dir/new.txt"])
        (root / "added.bin").write_bytes(STAGED["/added.bin"])
        os.unlink(root / "gone.txt")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == ""  # killed before it could say it survived
        assert proc.wait() == -9
    finally:
        proc.kill()
        proc.wait()
    assert store.fsck(verify_content=True).problems == []
    head = backend.inspect_branch("data", "master").head
    landed = point == "finish_commit"
    assert (head.message == "the crashing commit") is landed
    manager = MountManager(backend, mount_dir, state_dir, fuse=mode == "fuse")
    try:
        status = manager.status("data")
        assert (status.state, status.base, status.behind) == ("mounted", head.id, 0)
        assert [c for c in store.open_commits("data")] == []
        pending = {c.path: c.change for c in manager.changes("data").changes}
        assert pending == ({} if landed else {"/change.txt": "modified", "/dir/new.txt": "added",
                                              "/added.bin": "added", "/gone.txt": "deleted"})
        assert disk_tree(mount_dir / "data") == STAGED
        assert not (state_dir / "stage/data/commit.json").exists()
        if not landed:
            again = manager.commit("data", "after the crash", "ann")
            assert again.parent == head.id
        assert {i.path: backend.get_file("data", "master", i.path) for i in backend.walk("data", "master")
                if not i.is_dir} == STAGED
    finally:
        manager.close()
        if backend is not store:
            backend.close()
    leftover = [p for p, _ in fuse_mounts() if p.startswith(str(tmp_path))]
    for point_left in leftover:
        unmount(point_left, lazy=True)
    assert leftover == []


def test_journal_left_by_an_aborted_commit_is_harmless(tmp_path):
    """A journal naming a commit that no longer exists (aborted) settles to 'did not land'."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    with MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=False) as manager:
        manager.mount("data", mode="rw")
        (tmp_path / "pfs/data/a.txt").write_bytes(b"a")
    opened = backend.start_commit("data", "master", message="m", author="ann")
    backend.abort_commit(opened)
    (tmp_path / "state/stage/data/commit.json").write_text(json.dumps(
        {"base": None, "message": "m", "author": "ann", "time": 0, "commit": opened.id, "started": None}))
    with MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=False) as manager:
        assert [(c.path, c.change) for c in manager.changes("data").changes] == [("/a.txt", "added")]
        assert not (tmp_path / "state/stage/data/commit.json").exists()
        assert manager.commit("data", "now", "ann").parent is None
    backend.close()


def test_a_staged_commit_finished_but_never_landed_leaves_nothing_behind(tmp_path):
    """Pachyderm backend: a process that died between finishing the staged commit (on its private
    branch) and landing it. The next manager finds it did not land, drops its staging branch, and the
    mount's changes are still pending."""
    from jupyterlab_pachls.pfs.pachyderm import STAGING_PREFIX
    from jupyterlab_pachls.pfs.server import make_server

    store = LocalBackend(tmp_path / "store")
    server, port = make_server(store, "127.0.0.1:0")
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"})
    try:
        backend.create_repo("data")
        with MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=False) as manager:
            manager.mount("data", mode="rw")
            (tmp_path / "pfs/data/a.txt").write_bytes(b"a")
        opened = backend.start_commit("data", "master", message="m", author="ann")
        backend.put_files(opened, [("/a.txt", b"a")])
        # the staged commit finished on its private branch: the landing never started
        backend._rpc("FinishCommit", backend.pfs.finish_commit, commit=backend._commit_msg("data", opened.id))
        assert any(b.name.startswith(STAGING_PREFIX) for b in store.list_branches("data"))
        (tmp_path / "state/stage/data/commit.json").write_text(json.dumps(
            {"base": None, "message": "m", "author": "ann", "time": 0, "commit": opened.id,
             "started": opened.started.isoformat() if opened.started else None}))
        with MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=False) as manager:
            assert [(c.path, c.change) for c in manager.changes("data").changes] == [("/a.txt", "added")]
            assert not any(b.name.startswith(STAGING_PREFIX) for b in store.list_branches("data"))
            assert backend.list_branches("data") == []  # nothing landed (the landing creates the branch)
            assert manager.commit("data", "now", "ann").message == "now"
    finally:
        backend.close()
        server.stop(grace=None).wait()
        store.close()


@pytest.mark.parametrize("via", ["commit", "refresh"])
@pytest.mark.parametrize("mode", ["fuse", "nofuse"])
def test_a_renamed_directory_does_not_hide_files_others_added_there(tmp_path, mode, via):
    """Directory /a renamed to /b in the mount; another writer adds /a/new.txt meanwhile. After our commit
    lands on top (or a refresh brings theirs in), the mount shows /a/new.txt and does not list it as a
    pending deletion (which the next commit would carry out: their file lost)."""
    need_fuse(mode)
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("r")
    with backend.commit("r", "master", message="base") as c:
        c.put_file("/a/x.txt", b"x")
    manager = MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=mode == "fuse")
    try:
        root = tmp_path / "pfs" / "r"
        manager.mount("r", mode="rw")
        os.rename(root / "a", root / "b")
        with backend.commit("r", "master", message="theirs") as c:
            c.put_file("/a/new.txt", b"theirs")
        if via == "commit":
            manager.commit("r", "ours", "ann")
            pending = {}
        else:
            manager.refresh("r")
            pending = {"/a/x.txt": "deleted", "/b/x.txt": "added"}
        assert {c.path: c.change for c in manager.changes("r").changes} == pending
        assert disk_tree(root) == {"/a/new.txt": b"theirs", "/b/x.txt": b"x"}
        if via == "refresh":
            manager.commit("r", "ours", "ann")
        assert {i.path for i in backend.walk("r", "master") if not i.is_dir} == {"/a/new.txt", "/b/x.txt"}
    finally:
        manager.close()
        backend.close()
