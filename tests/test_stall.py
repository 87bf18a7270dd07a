"""A cluster that stops answering cannot stall the panel: a real Jupyter server (``JupyterServer``)
whose Pachyderm backend points at one of two faithful stand-ins for such a cluster:

- ``tcp``: a TCP server that accepts connections and never sends a byte (no HTTP/2 handshake ever);
- ``grpc``: the package's real Pachyderm-API server over an embedded store, made to block: once the
  Jupyter server is up, every call's handler sends nothing until the client gives up.

Every panel route answers: those that ask the cluster (health, backend, repos, panel) with what timed out
(``unavailable`` naming the call or the wait and the address), within the quick deadline and well
before the 120 s of the long one; those that need no cluster (identity, labeling status, mounts, the
API document) answer while a stalled request is still waiting. Bounds are generous: calls must end,
not be fast.
"""

from __future__ import annotations

import json
import threading

import pytest
from pfs.test_pachyderm_deadlines import SilentTcpServer, Stall
from serverproc import JupyterServer

from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.server import make_server

#: Far below the 120 s long deadline a stalled poll waited before, far above the quick one.
BOUND = 40.0
#: What the panel asks that needs no cluster.
FAST_ROUTES = ("identity", "labeling", "mounts", "openapi.json")


@pytest.fixture
def quick_rpc_timeout() -> float | None:
    """The ``PachlsConfig.quick_rpc_timeout`` of ``stalled_server`` (None: the default); a test
    parametrizes it to change it."""
    return None


@pytest.fixture(params=["tcp", "grpc"])
def stalled_server(request, tmp_path, quick_rpc_timeout):
    """A Jupyter server whose saved backend choice is a cluster that never answers (see the module doc)."""
    store = LocalBackend(tmp_path / "served")
    store.create_repo("images")
    stall = Stall()
    stall.active.clear()  # the served cluster answers until the Jupyter server is up
    if request.param == "tcp":
        silent = SilentTcpServer()
        port, stop = silent.port, silent.close
    else:
        server, port = make_server(store, "127.0.0.1:0", interceptors=(stall,))
        stop = lambda: server.stop(grace=None).wait()  # noqa: E731
    address = f"grpc://127.0.0.1:{port}"
    choice = tmp_path / "backend.json"
    choice.write_text(json.dumps({"kind": "pachyderm", "pachd_address": address}))
    config = {"PachlsConfig.backend_file": str(choice)}
    if quick_rpc_timeout is not None:
        config["PachlsConfig.quick_rpc_timeout"] = quick_rpc_timeout
    jupyter = JupyterServer(tmp_path / "root", store=tmp_path / "store", no_fuse=True, config=config)
    try:
        jupyter.start()
        stall.active.set()
        yield jupyter, address
    finally:
        jupyter.stop()
        stop()
        store.close()


def ask(jupyter: JupyterServer, route: str) -> tuple[int, dict]:
    """(status, JSON body) of ``GET /pachls/api/<route>``; a request still waiting after BOUND fails."""
    status, raw, _ = jupyter.request("GET", f"pachls/api/{route}", timeout=BOUND)
    return status, json.loads(raw)


def test_routes_that_ask_a_stalled_cluster_answer_unavailable_naming_what_timed_out(stalled_server):
    jupyter, address = stalled_server
    for _ in range(2):  # the first poll meets the silence, the next ones know it
        status, health = ask(jupyter, "health")
        assert status == 200 and health["backend"]["connected"] is False, health
        assert address in health["backend"]["error"] and "does not answer" in health["backend"]["error"]

        status, backend = ask(jupyter, "backend")
        assert status == 200 and backend["connected"] is False and address in backend["error"], backend

        status, repos = ask(jupyter, "repos")
        assert status == 503 and repos["error"] == "unavailable", repos
        assert repos["details"]["address"] == address and "does not answer" in repos["message"], repos

        status, panel = ask(jupyter, "panel")  # what the panel polls: the failed part says why
        assert status == 200 and panel["health"]["backend"]["connected"] is False, panel
        assert panel["errors"]["repos"]["error"] == "unavailable" and address in panel["errors"]["repos"]["message"]


# each of its polls waits the whole deadline; a long one (ListRepo: twice it, the cluster asked whether it
# answers), so that the fast routes surely answer before it ends, within BOUND
@pytest.mark.parametrize("quick_rpc_timeout", [8.0])
@pytest.mark.parametrize("stalled_server", ["grpc"], indirect=True)
def test_routes_that_need_no_cluster_answer_while_a_stalled_poll_waits(stalled_server):
    jupyter, _ = stalled_server
    answered: dict[str, tuple[int, dict]] = {}
    stalled = threading.Thread(target=lambda: answered.setdefault("repos", ask(jupyter, "repos")))
    stalled.start()
    try:
        for route in FAST_ROUTES:
            status, raw, _ = jupyter.request("GET", f"pachls/api/{route}", timeout=BOUND)
            assert status == 200, (route, raw[:300])
        # every fast answer came back while the poll of the stalled cluster was still waiting on it
        assert stalled.is_alive() and "repos" not in answered
    finally:
        stalled.join(BOUND)
    assert answered["repos"][0] == 503 and answered["repos"][1]["error"] == "unavailable"


def test_the_quick_deadline_is_a_setting(tmp_path):
    """``PachlsConfig.quick_rpc_timeout`` reaches the backend: the error says the configured deadline."""
    store = LocalBackend(tmp_path / "served")
    stall = Stall()
    stall.active.clear()
    server, port = make_server(store, "127.0.0.1:0", interceptors=(stall,))
    choice = tmp_path / "backend.json"
    choice.write_text(json.dumps({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"}))
    jupyter = JupyterServer(tmp_path / "root", store=tmp_path / "store", no_fuse=True,
                            config={"PachlsConfig.backend_file": str(choice), "PachlsConfig.quick_rpc_timeout": 1.5,
                                    "PachlsConfig.rpc_timeout": 3600.0})
    try:
        jupyter.start()
        stall.active.set()
        status, repos = ask(jupyter, "repos")
        assert status == 503 and "ListRepo got nothing for 1.5 s" in repos["message"], repos
    finally:
        jupyter.stop()
        server.stop(grace=None).wait()
        store.close()
