"""``GET/PUT /pachls/api/backend``: switching explicitly between the embedded store and a
Pachyderm cluster (here: the package's Pachyderm-API gRPC server over another embedded
store, reached by the real ``pachyderm_sdk`` client), saved across restarts."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.server import make_server
from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

TOKEN = "s3cret-token-value"


@pytest.fixture
def cluster(tmp_path):
    """A Pachyderm-API server over a store holding repo ``remote``; yields its grpc:// address."""
    served = LocalBackend(tmp_path / "served-store")
    served.create_repo("remote", description="on the cluster")
    with served.commit("remote", "master", message="remote data", author="cluster") as c:
        c.put_file("/r.txt", b"remote")
    server, port = make_server(served, "127.0.0.1:0")
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()
        served.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backend_file(jp_data_dir):
    return jp_data_dir / "pachls" / "backend.json"


async def repo_names(api) -> list[str]:
    status, body = await api("GET", "repos")
    assert status == 200, body
    return [r["name"] for r in body["repos"]]


async def test_default_backend_is_the_embedded_store(api, pachls_store, backend_file):
    status, body = await api("GET", "backend")
    assert status == 200
    assert body["kind"] == "local" and body["connected"] is True
    assert body["pachd_address"] is None and body["auth_token_set"] is False
    assert os.path.samefile(body["store_dir"], pachls_store)
    assert body["saved_in"] == str(backend_file)
    assert not backend_file.exists()


async def test_switch_to_cluster_and_back(api, raw_api, pachls_state, cluster, backend_file):
    pachls_state.backend.create_repo("local-only")
    status, body = await api("PUT", "backend",
                             {"kind": "pachyderm", "pachd_address": cluster, "auth_token": TOKEN})
    assert status == 200, body
    assert body["kind"] == "pachyderm" and body["connected"] is True
    assert body["pachd_address"] == cluster and body["auth_token_set"] is True
    assert await repo_names(api) == ["remote"]
    status, body = await api("GET", "repos/remote/branches/master/commits")
    assert body["commits"][0]["message"] == "remote data"
    response = await raw_api("GET", "repos/remote/commits/master/file?path=/r.txt")
    assert response.body == b"remote"
    status, health = await api("GET", "health")
    assert health["backend"]["kind"] == "pachyderm" and health["backend"]["connected"] is True

    # The token never leaves the server.
    for route in ("backend", "health", "repos"):
        response = await raw_api("GET", route)
        assert TOKEN not in response.body.decode()
    # ... but it is kept, owner-only, so that a restart reconnects.
    saved = json.loads(backend_file.read_text())
    assert saved == {"kind": "pachyderm", "pachd_address": cluster, "auth_token": TOKEN}
    assert stat.S_IMODE(backend_file.stat().st_mode) == 0o600

    status, body = await api("PUT", "backend", {"kind": "local"})
    assert status == 200, body
    assert body["kind"] == "local" and body["auth_token_set"] is False and body["pachd_address"] is None
    assert await repo_names(api) == ["local-only"]
    assert json.loads(backend_file.read_text()) == {"kind": "local"}


async def test_unreachable_cluster_is_503_and_the_old_backend_stays(api, pachls_state, closed_port, backend_file):
    pachls_state.backend.create_repo("kept")
    old = pachls_state.backend
    status, body = await api("PUT", "backend",
                             {"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{closed_port}"})
    assert status == 503, body
    assert body["error"] == "unavailable"
    assert str(closed_port) in body["message"]
    assert pachls_state.backend is old
    assert await repo_names(api) == ["kept"]
    status, body = await api("GET", "backend")
    assert body["kind"] == "local" and body["connected"] is True
    assert not backend_file.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"kind": "s3"},
        {"kind": None},
        {"kind": "local", "path": "/tmp/elsewhere"},
        {"kind": "pachyderm", "pachd_address": 30650},
        {"kind": "pachyderm", "pachd_address": "grpc://host :1"},
        {"kind": "pachyderm", "pachd_address": ""},
        {"kind": "pachyderm", "pachd_address": "grpc://h:1", "auth_token": 5},
        {"kind": "pachyderm", "pachd_address": "grpc://h:1", "verbose": True},
    ],
)
async def test_bad_backend_request_is_400(api, pachls_state, payload, backend_file):
    old = pachls_state.backend
    status, body = await api("PUT", "backend", payload)
    assert status == 400, body
    assert body["error"] == "invalid_argument"
    assert pachls_state.backend is old
    assert not backend_file.exists()


async def test_malformed_address_is_refused(api, pachls_state, backend_file):
    old = pachls_state.backend
    status, body = await api("PUT", "backend", {"kind": "pachyderm", "pachd_address": "ftp://[nope"})
    assert status in (400, 503), body
    assert body["error"] in ("invalid_argument", "unavailable")
    assert pachls_state.backend is old
    assert not backend_file.exists()


class TestSavedChoiceSurvivesRestart:
    """A server that starts with a saved choice opens that backend."""

    @pytest.fixture
    def backend_file(self, backend_file, cluster):
        backend_file.parent.mkdir(parents=True, exist_ok=True)
        backend_file.write_text(json.dumps({"kind": "pachyderm", "pachd_address": cluster,
                                            "auth_token": TOKEN}))
        return backend_file

    @pytest.fixture
    def jp_server_config(self, jp_server_config, backend_file):
        return jp_server_config

    async def test_starts_on_the_saved_cluster(self, api, cluster):
        status, body = await api("GET", "backend")
        assert status == 200
        assert body["kind"] == "pachyderm" and body["pachd_address"] == cluster
        assert body["auth_token_set"] is True and body["connected"] is True
        assert await repo_names(api) == ["remote"]


class TestCorruptSavedChoice:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, backend_file):
        backend_file.parent.mkdir(parents=True, exist_ok=True)
        backend_file.write_text("{not json")
        return jp_server_config

    async def test_falls_back_to_the_embedded_store(self, api):
        status, body = await api("GET", "backend")
        assert status == 200
        assert body["kind"] == "local" and body["connected"] is True


class TestBackendFileTraitlet:
    @pytest.fixture
    def pachls_config(self, tmp_path):
        return {"PachlsConfig": {"backend_file": str(tmp_path / "conf" / "choice.json")}}

    async def test_choice_saved_where_configured(self, api, tmp_path):
        status, body = await api("PUT", "backend", {"kind": "local"})
        assert status == 200
        assert body["saved_in"] == str(tmp_path / "conf" / "choice.json")
        assert json.loads((tmp_path / "conf" / "choice.json").read_text()) == {"kind": "local"}
