"""The REST API when the Pachyderm API goes away: the server switched (PUT /backend) to a Pachyderm-API
server that is SIGKILLed (``jupyter pachls serve`` in its own process) or stopped in the middle of a
mount commit. Every route answers: 503 ``unavailable`` with the address and what to do, or the panel's
polls keep answering with the error inside; staged files stay; the server comes back and the same
Jupyter server uses it again without a restart or a new PUT; the retry lands one whole commit."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from jupyterlab_pachls.labeling.labelstudio import free_port
from stoppable_cluster import Cluster, StopAt


@pytest.fixture
def pachls_config() -> dict:
    """Who writes history here (commits and rollbacks need a name and an email)."""
    return {"PachlsConfig": {"user_name": "Ann Labeler", "user_email": "ann@example.com"}}


@pytest.fixture(autouse=True)
def no_fuse(monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")


class ServeProcess:
    """``jupyter pachls serve`` (the module's entry point) on a fixed port, killable and restartable."""

    def __init__(self, store) -> None:
        self.store, self.port = store, free_port()
        self.address = f"grpc://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab_pachls.pfs.server", "serve", "--port", str(self.port),
             "--store", str(self.store)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.process.stdout.readline()
        assert "serving" in line, line

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)


@pytest.fixture
def serve(tmp_path):
    server = ServeProcess(tmp_path / "served")
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


async def until_ok(api, method, path, body=None, timeout=30.0):
    for _ in range(int(timeout / 0.25)):
        status, answer = await api(method, path, body)
        if status != 503:
            return status, answer
        await asyncio.sleep(0.25)
    return status, answer


async def setup_mount(api, address, pachls_state):
    status, body = await api("PUT", "backend", {"kind": "pachyderm", "pachd_address": address})
    assert status == 200 and body["connected"], body
    backend = pachls_state.backend
    backend.create_repo("data")
    with backend.commit("data", "master", message="base") as c:
        c.put_file("/keep.txt", b"keep")
    status, mount = await api("POST", "mounts", {"repo": "data", "branch": "master", "mode": "rw", "name": "work"})
    assert status in (200, 201), mount
    root = pachls_state.mounts.status("work").mountpoint
    with open(f"{root}/new.txt", "wb") as f:
        f.write(b"staged")
    return backend, c.finished.id


def assert_unreachable(status, body, address):
    assert status == 503, body
    assert body["error"] == "unavailable" and body["details"]["address"] == address
    assert address in body["message"] and "does not answer" in body["message"]


async def test_api_server_killed_then_back_every_route_answers_and_the_commit_lands(api, pachls_state, serve):
    backend, base = await setup_mount(api, serve.address, pachls_state)
    serve.kill()

    status, body = await api("GET", "repos")
    assert_unreachable(status, body, serve.address)
    status, body = await api("GET", "repos/data/branches/master/commits")
    assert_unreachable(status, body, serve.address)
    status, body = await api("POST", "mounts/work/commit", {"message": "while down"})
    assert_unreachable(status, body, serve.address)
    # the panel's other polls answer, with the error inside
    status, body = await api("GET", "health")
    assert status == 200 and body["backend"]["connected"] is False
    assert serve.address in body["backend"]["error"]
    status, body = await api("GET", "mounts")
    assert status == 200, body
    # the staged file is kept
    status, body = await api("GET", "mounts/work/changes")
    assert status == 200 and [c["path"] for c in body["changes"]] == ["/new.txt"], body

    serve.start()  # same port, same store: no PUT /backend, no Jupyter restart
    status, body = await until_ok(api, "GET", "repos")
    assert status == 200 and [r["name"] for r in body["repos"]] == ["data"]
    status, body = await api("POST", "mounts/work/commit", {"message": "after"})
    assert status == 201, body
    assert body["commit"]["parent"] == base
    assert backend.get_file("data", "master", "/new.txt") == b"staged"
    assert [c.message for c in backend.list_commits("data", "master")][:2] == ["after", "base"]


async def test_api_server_stopped_mid_mount_commit_leaves_no_half_commit(api, pachls_state, tmp_path):
    cluster = Cluster(tmp_path / "served")
    try:
        backend, base = await setup_mount(api, cluster.address, pachls_state)
        cluster.stop()
        stop = StopAt("ModifyFile", 2)  # while the landing commit gets the staged files
        cluster.start(stop)
        status, body = await api("POST", "mounts/work/commit", {"message": "cut"})
        assert stop.fired.is_set()
        assert_unreachable(status, body, cluster.address)

        cluster.start()
        status, body = await until_ok(api, "GET", "repos/data/branches/master/commits")
        assert status == 200 and [c["message"] for c in body["commits"]][:1] == ["base"]  # nothing half-done
        status, body = await api("GET", "mounts/work/changes")
        assert [c["path"] for c in body["changes"]] == ["/new.txt"]
        status, body = await api("POST", "mounts/work/commit", {"message": "retry"})
        assert status == 201 and body["commit"]["parent"] == base, body
        assert backend.get_file("data", "master", "/new.txt") == b"staged"
        assert [b.name for b in cluster.served.list_branches("data")] == ["master"]  # nothing left behind
    finally:
        status, _ = await api("DELETE", "mounts/work")
        cluster.close()
