"""What the Pachyderm client keeps while a cluster stays unreachable does not grow with the outage: the
background probe asks for the connection every second, and each wait that ran out must let go of the
channel (gRPC keeps a ready-future subscribed, and called on every state change, until the channel
connects). Real gRPC against a TCP server that accepts and never answers."""

from __future__ import annotations

import time

import pytest

from jupyterlab_pachls.pfs import open_backend
from jupyterlab_pachls.pfs.errors import Unavailable
from jupyterlab_pachls.pfs.pachyderm.channel import DOWN_RECHECK

from .test_pachyderm_deadlines import SilentTcpServer

PROBES = 3  # connection waits the probe makes while the test watches


def subscriptions(backend) -> int:
    """Callbacks subscribed to the backend's gRPC channel (grpcio keeps them in this private list)."""
    state = getattr(backend.channel._raw, "_connectivity_state", None)
    if state is None or not hasattr(state, "callbacks_and_connectivities"):
        pytest.skip("this grpcio keeps its channel subscriptions elsewhere")
    return len(state.callbacks_and_connectivities)


def test_a_long_outage_leaves_no_subscription_per_probe():
    silent = SilentTcpServer()
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{silent.port}",
                            "connect_timeout": 0.5, "quick_rpc_timeout": 0.5})
    try:
        with pytest.raises(Unavailable):
            backend.ping()  # runs out: the probe now asks for the connection every DOWN_RECHECK
        time.sleep(PROBES * DOWN_RECHECK)
        assert subscriptions(backend) <= 2  # the channel's own, and the probe's wait in progress
    finally:
        backend.close()
        silent.close()
