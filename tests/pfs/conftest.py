"""Backends under test. The conformance suite runs unchanged on every param of ``backend``."""

from __future__ import annotations

import pytest

from jupyterlab_pachls.pfs import Backend, open_backend


@pytest.fixture(params=["local"])
def backend_spec(request, tmp_path) -> dict:
    """A picklable config that ``open_backend`` turns into a backend, in this process or another."""
    if request.param == "local":
        yield {"kind": "local", "path": str(tmp_path / "store")}


@pytest.fixture
def backend(backend_spec) -> Backend:
    opened = open_backend(backend_spec)
    yield opened
    opened.close()
