"""The inotify watch of a no-FUSE read-write mount: opened only by the first pending count, closed
with the mount, never left open by a restart that settles an interrupted commit."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount import plain as plain_module
from jupyterlab_pachls.mount.journal import CommitJournal
from jupyterlab_pachls.pfs import LocalBackend


def inotify_instances() -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in os.listdir(fds):
        try:
            count += os.readlink(fds / fd) == "anon_inode:inotify"
        except OSError:
            pass  # closed meanwhile (the listing's own descriptor)
    return count


def test_a_restart_that_settles_a_landed_commit_leaves_no_inotify_instance_open(tmp_path, dirs, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("r")
    with backend.commit("r", "master") as c:
        c.put_file("/a.txt", b"a")
    before = inotify_instances()
    manager = MountManager(backend, dirs[0], dirs[1])
    try:
        manager.mount("r", mode="rw", name="w")
        record = manager._mounts["w"].record
        base = record.base
        mp = Path(manager.status("w").mountpoint)
        (mp / "new.txt").write_bytes(b"new")
        assert manager.status("w").pending == 1
        assert inotify_instances() == before + 1  # the pending count watches the directory
    finally:
        manager.close()
    assert inotify_instances() == before
    # the commit landed, and the server stopped before the mount followed it
    with backend.commit("r", "master") as c:
        c.put_file("/new.txt", b"new")
    landed = backend.inspect_branch("r", "master").head.id
    CommitJournal(backend, None, record, Path(dirs[1]) / "stage" / "w").write(
        {"base": base, "landed": landed, "parent": base})

    manager = MountManager(backend, dirs[0], dirs[1])
    try:
        assert inotify_instances() == before  # settling watched nothing, and nothing was counted yet
        status = manager.status("w")
        assert (status.base, status.pending) == (landed, 0)
        assert inotify_instances() == before + 1
    finally:
        manager.close()
        backend.close()
    assert inotify_instances() == before


def test_a_write_through_a_hard_link_made_outside_is_counted_within_the_rescan_age(tmp_path, dirs, monkeypatch):
    """Writing through a link outside the directory raises no inotify event in the watched
    directories: the count is still right once it is older than RESCAN_AGE."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    monkeypatch.setattr(plain_module, "RESCAN_AGE", 0.5)
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("r")
    with backend.commit("r", "master") as c:
        c.put_file("/a.txt", b"a")
    manager = MountManager(backend, dirs[0], dirs[1])
    try:
        manager.mount("r", mode="rw", name="w")
        mp = Path(manager.status("w").mountpoint)
        assert manager.status("w").pending == 0
        outside = tmp_path / "outside.txt"
        os.link(mp / "a.txt", outside)
        with open(outside, "ab") as f:
            f.write(b" and more")
        outside.unlink()
        deadline = time.monotonic() + 30.0
        while manager.status("w").pending != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert manager.status("w").pending == 1 == len(manager.changes("w").changes)
    finally:
        manager.close()
        backend.close()
