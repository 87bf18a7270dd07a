"""A commit that landed is never reported as failed, even when the Pachyderm API drops right after it
landed (before the mount's stage could follow it).

The mount runs on ``PachydermBackend`` against the package's Pachyderm-API gRPC server; the server is
stopped at the ``DeleteBranch`` that ``finish_commit`` sends once the commit is on the branch (the
staging branch's clean-up), so everything the mount does afterwards to follow the commit fails with
``Unavailable``. The commit must be returned, the mount must say it needs a refresh, and the refresh
(or the next start) must move the stage onto the landed commit: nothing that landed shown as pending,
nothing pending lost, and the next commit lands without a conflict with itself.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import open_backend
from jupyterlab_pachls.pfs.errors import Unavailable
from stoppable_cluster import Cluster, StopAt, eventually

from .conftest import tree_of


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
def managers(backend, dirs, presentation):
    made = []

    def make() -> MountManager:
        manager = MountManager(backend, dirs[0], dirs[1], fuse=True if presentation == "fuse" else None)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()
    threads = [t.name for t in threading.enumerate() if t.name.startswith("pachls-fuse-")]
    assert not threads, f"FUSE threads left running: {threads}"


def branch_files(backend, ref="master") -> dict[str, bytes]:
    return {i.path: backend.get_file("r", ref, i.path) for i in backend.walk("r", ref) if not i.is_dir}


@pytest.mark.parametrize("others", [False, True], ids=["alone", "on-top-of-another-commit"])
@pytest.mark.parametrize("repair", ["refresh", "restart", "next-call"])
def test_commit_landed_while_the_api_drops_is_returned_and_the_mount_catches_up(
        cluster, backend, managers, presentation, repair, others):
    backend.create_repo("r")
    with backend.commit("r", "master", message="base") as c:
        c.put_files([("/keep.txt", b"keep"), ("/old.txt", b"old"), ("/gone.txt", b"gone"),
                     ("/dir/a.txt", b"a")])
    base = c.finished.id
    manager = managers()
    manager.mount("r", "master", mode="rw", name="w")
    mp = Path(manager.status("w").mountpoint)
    (mp / "new.txt").write_bytes(b"new")
    (mp / "old.txt").write_bytes(b"changed")
    (mp / "gone.txt").unlink()
    assert {ch.path for ch in manager.changes("w").changes} == {"/new.txt", "/old.txt", "/gone.txt"}
    if others:  # another writer lands first: the commit lands on top of it and must bring it in
        with backend.commit("r", "master", message="theirs") as c:
            c.put_file("/theirs.txt", b"theirs")
        theirs = c.finished.id

    stop = StopAt("DeleteBranch", 1)  # finish_commit's clean-up, once the commit is on the branch
    cluster.stop()
    cluster.start(stop)
    landed = manager.commit("w", message="cut after landing", author="ana")  # not an error
    assert stop.fired.is_set()

    status = manager.status("w")
    assert status.state == "error" and landed.id in status.message and "refresh" in status.message
    assert status.base == landed.id and status.pending == 0
    with pytest.raises(Unavailable):  # nothing more is committed until the mount follows its commit
        manager.commit("w", message="again", author="ana")
    # the mount still shows what the user wrote (files of the base need the server: not read here),
    # and takes new writes
    assert (mp / "new.txt").read_bytes() == b"new" and (mp / "old.txt").read_bytes() == b"changed"
    assert sorted(p.name for p in mp.iterdir()) == ["dir", "keep.txt", "new.txt", "old.txt"]
    (mp / "later.txt").write_bytes(b"later")

    cluster.start()
    head = eventually(lambda: backend.inspect_branch("r", "master")).head
    (mp / "dir" / "a.txt").write_bytes(b"a2")  # (FUSE copies the base file up first: needs the server)
    assert head.id == landed.id and landed.parent == (theirs if others else base)
    want = {"/keep.txt": b"keep", "/old.txt": b"changed", "/new.txt": b"new", "/dir/a.txt": b"a"}
    if others:
        want["/theirs.txt"] = b"theirs"
    assert branch_files(backend) == want

    if repair == "refresh":
        status = eventually(lambda: manager.refresh("w"))
    elif repair == "next-call":  # changes (as commit and discard) catch up first once the API is back
        eventually(lambda: manager.changes("w"))
        status = manager.status("w")
    else:
        manager.close()
        manager = managers()
        status = manager.status("w")
    assert status.state == "mounted", status.message
    assert status.base == landed.id and status.behind == 0
    changes = {ch.path: ch.change for ch in manager.changes("w").changes}
    assert changes == {"/later.txt": "added", "/dir/a.txt": "modified"}  # only what did not land
    shown = tree_of(Path(manager.status("w").mountpoint))
    assert shown == want | {"/later.txt": b"later", "/dir/a.txt": b"a2"}

    again = manager.commit("w", message="later", author="ana")
    assert again.parent == landed.id
    assert branch_files(backend) == want | {"/later.txt": b"later", "/dir/a.txt": b"a2"}
    assert manager.changes("w").changes == ()
    assert [b.name for b in cluster.served.list_branches("r")] == ["master"]


def test_refresh_while_the_api_is_still_down_keeps_the_mount_in_error_and_works_later(
        cluster, backend, managers, presentation):
    backend.create_repo("r")
    with backend.commit("r", "master", message="base") as c:
        c.put_file("/keep.txt", b"keep")
    manager = managers()
    manager.mount("r", "master", mode="rw", name="w")
    mp = Path(manager.status("w").mountpoint)
    (mp / "new.txt").write_bytes(b"new")
    stop = StopAt("DeleteBranch", 1)
    cluster.stop()
    cluster.start(stop)
    landed = manager.commit("w", message="cut", author="ana")
    with pytest.raises(Unavailable):
        manager.refresh("w")
    assert manager.status("w").state == "error"
    cluster.start()
    status = eventually(lambda: manager.refresh("w"))
    assert status.state == "mounted" and status.base == landed.id and status.pending == 0
    assert manager.changes("w").changes == ()
    assert tree_of(mp) == {"/keep.txt": b"keep", "/new.txt": b"new"}
