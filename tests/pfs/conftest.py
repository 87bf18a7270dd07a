"""Backends under test. The conformance suite runs unchanged on every param of ``backend``."""

from __future__ import annotations

import os

import pytest

from jupyterlab_pachls.pfs import Backend, open_backend


@pytest.fixture(params=["local", "pachyderm", "cluster"])
def backend_spec(request, tmp_path) -> dict:
    """A picklable config that ``open_backend`` turns into a backend, in this process or another."""
    if request.param == "local":
        yield {"kind": "local", "path": str(tmp_path / "store")}
    elif request.param == "pachyderm":
        # PachydermBackend -> real gRPC on 127.0.0.1 -> the Pachyderm-API server over a fresh embedded store
        from jupyterlab_pachls.pfs import LocalBackend
        from jupyterlab_pachls.pfs.server import make_server

        served = LocalBackend(tmp_path / "served-store")
        server, port = make_server(served, "127.0.0.1:0")
        try:
            yield {"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"}
        finally:
            server.stop(grace=None).wait()
            served.close()
    elif request.param == "cluster":
        address = os.environ.get("PACHD_ADDRESS")
        if not address:
            pytest.skip("PACHD_ADDRESS is not set: no real Pachyderm cluster to test against")
        yield {"kind": "pachyderm", "pachd_address": address, "auth_token": os.environ.get("PACH_AUTH_TOKEN")}


@pytest.fixture
def backend(backend_spec) -> Backend:
    opened = open_backend(backend_spec)
    yield opened
    opened.close()
