"""``PachlsConfig.connect_timeout`` reaches the Pachyderm backend the server opens: against an address
that accepts connections and never answers (a black hole for gRPC: no HTTP/2 handshake ever), a call
fails as ``Unavailable`` after waiting the configured time for the connection, not a built-in one."""

from __future__ import annotations

import pytest

from jupyterlab_pachls.app import open_backend
from jupyterlab_pachls.config import PachlsConfig
from jupyterlab_pachls.pfs.errors import Unavailable

from .test_pachyderm_deadlines import SilentTcpServer


@pytest.fixture
def black_hole():
    silent = SilentTcpServer()
    yield f"grpc://127.0.0.1:{silent.port}"
    silent.close()


@pytest.mark.parametrize("configured, chosen, waited", [(1.0, None, "waited 1 s"), (1.0, 1.5, "waited 1.5 s")])
def test_a_black_holed_cluster_fails_after_the_configured_connect_timeout(black_hole, configured, chosen, waited):
    """The configured wait reaches the channel; a backend choice that names its own wins over it."""
    choice = {"kind": "pachyderm", "pachd_address": black_hole}
    if chosen is not None:
        choice["connect_timeout"] = chosen
    backend = open_backend(PachlsConfig(connect_timeout=configured), choice)
    try:
        with pytest.raises(Unavailable) as info:
            backend.list_repos()
        assert waited in info.value.message and black_hole in info.value.message
    finally:
        backend.close()
