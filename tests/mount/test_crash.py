"""A mount server killed with SIGKILL: its FUSE mounts go stale; the next one cleans them up and
brings back every mount with its staged changes."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount.fusefs import fuse_mounts

from .conftest import repo_state

SERVER = textwrap.dedent("""
    import json, sys, time
    from jupyterlab_pachls.mount import MountManager
    from jupyterlab_pachls.pfs import open_backend
    spec, mount_dir, state_dir, fuse = sys.argv[1:5]
    manager = MountManager(open_backend(json.loads(spec)), mount_dir, state_dir, fuse=fuse == "fuse")
    manager.mount("images", mode="rw")
    manager.mount("images", mode="ro", name="view")
    print("ready", flush=True)
    time.sleep(3600)
""")


@pytest.fixture
def killed_server(backend, backend_spec, images, dirs, presentation):
    mount_dir, state_dir = dirs
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps(backend_spec), str(mount_dir), str(state_dir),
                             presentation], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        root = mount_dir / "images"
        (root / "cats/001.png").write_bytes(b"staged before the crash")
        (root / "new.txt").write_bytes(b"new")
        os.unlink(root / "README.md")
        assert (mount_dir / "view/README.md").read_bytes() == b"# images\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return mount_dir, state_dir


def test_killed_server_leaves_nothing_behind(killed_server, backend, presentation):
    mount_dir, state_dir = killed_server
    ours = [p for p, _ in fuse_mounts() if p.startswith(str(mount_dir))]
    if presentation == "fuse":
        assert sorted(ours) == [str(mount_dir / "images"), str(mount_dir / "view")]
        with pytest.raises(OSError) as info:
            os.stat(mount_dir / "images")
        assert info.value.errno == errno.ENOTCONN  # stale: nobody serves it
    manager = MountManager(backend, mount_dir, state_dir, fuse=presentation == "fuse")
    try:
        if presentation == "fuse":
            assert sorted(manager.cleaned_stale) == [str(mount_dir / "images"), str(mount_dir / "view")]
        assert [(s.name, s.state, s.presentation) for s in manager.list()] == [
            ("images", "mounted", presentation), ("view", "mounted", presentation)]
        assert [(c.path, c.change) for c in manager.changes("images").changes] == [
            ("/README.md", "deleted"), ("/cats/001.png", "modified"), ("/new.txt", "added")]
        assert (mount_dir / "images/cats/001.png").read_bytes() == b"staged before the crash"
        assert (mount_dir / "view/README.md").read_bytes() == b"# images\n"
        landed = manager.commit("images", "after the crash", "ann")
        assert repo_state(backend, "images", "master") == {
            "/cats/001.png": b"staged before the crash", "/cats/002.png": b"cat two",
            "/dogs/001.png": b"dog one", "/new.txt": b"new"}
        assert landed.message == "after the crash"
    finally:
        manager.close()
    assert [p for p, _ in fuse_mounts() if p.startswith(str(mount_dir))] == []


def test_one_manager_per_state_dir(manager, backend, dirs):
    from jupyterlab_pachls.pfs import Unavailable

    with pytest.raises(Unavailable):
        MountManager(backend, dirs[0], dirs[1], fuse=False)
