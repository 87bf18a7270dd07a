"""Mount tests run twice: through real FUSE mounts and in the forced no-FUSE mode."""

from __future__ import annotations

import os
import threading

import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount.fusefs import fuse_available, fuse_mounts
from jupyterlab_pachls.pfs import open_backend


@pytest.fixture(params=["local", "pachyderm"])
def backend_spec(request, tmp_path) -> dict:
    """The embedded store, and the Pachyderm backend over real gRPC (no blob files: reads go through
    the mount server's content cache)."""
    if request.param == "local":
        yield {"kind": "local", "path": str(tmp_path / "store")}
        return
    try:
        from jupyterlab_pachls.pfs import LocalBackend
        from jupyterlab_pachls.pfs.server import make_server
    except ImportError as exc:
        pytest.skip(f"no Pachyderm-API test server: {exc}")
    served = LocalBackend(tmp_path / "served-store")
    server, port = make_server(served, "127.0.0.1:0")
    try:
        yield {"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"}
    finally:
        server.stop(grace=None).wait()
        served.close()


@pytest.fixture
def backend(backend_spec):
    opened = open_backend(backend_spec)
    yield opened
    opened.close()


@pytest.fixture(params=["fuse", "no-fuse"])
def presentation(request, monkeypatch) -> str:
    if request.param == "fuse":
        monkeypatch.delenv("PACHLS_NO_FUSE", raising=False)
        ok, why = fuse_available()
        if not ok:
            pytest.skip(f"FUSE not usable here: {why}")
    else:
        monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    return request.param


@pytest.fixture
def dirs(tmp_path):
    mount_dir, state_dir = tmp_path / "pfs", tmp_path / "state"
    yield mount_dir, state_dir
    leftover = [p for p, _ in fuse_mounts() if p.startswith(str(tmp_path))]
    assert not leftover, f"FUSE mounts left behind: {leftover}"


@pytest.fixture
def make_manager(backend, dirs, presentation):
    made = []

    def make(**kwargs) -> MountManager:
        # no-FUSE: forced by PACHLS_NO_FUSE=1 alone (fuse=None means "FUSE when usable")
        manager = MountManager(backend, dirs[0], dirs[1], fuse=True if presentation == "fuse" else None, **kwargs)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()
    threads = [t.name for t in threading.enumerate() if t.name.startswith("pachls-fuse-")]
    assert not threads, f"FUSE threads left running: {threads}"


@pytest.fixture
def manager(make_manager) -> MountManager:
    return make_manager()


@pytest.fixture
def images(backend):
    """A repo ``images`` with a few files on master."""
    backend.create_repo("images")
    with backend.commit("images", "master", message="first") as c:
        c.put_file("/cats/001.png", b"cat one")
        c.put_file("/cats/002.png", b"cat two")
        c.put_file("/dogs/001.png", b"dog one")
        c.put_file("/README.md", b"# images\n")
    return c.finished


def tree_of(root) -> dict[str, bytes]:
    """Every file below ``root`` (following the mount's own top-level symlink) -> bytes."""
    root = os.path.realpath(root)
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out["/" + os.path.relpath(full, root)] = f.read()
    return out


def repo_state(backend, repo, ref) -> dict[str, bytes]:
    return {info.path: backend.get_file(repo, ref, info.path)
            for info in backend.walk(repo, ref) if not info.is_dir}
