"""Deadlines of the Pachyderm client: a cluster that accepts connections and never answers cannot
hold a caller. Everything goes through the real ``PachydermBackend`` and ``pachyderm_sdk`` over real
gRPC on 127.0.0.1, against two stand-ins for such a cluster:

- a TCP server that accepts connections and never sends a byte (no HTTP/2 handshake ever);
- the package's real Pachyderm-API server (``make_server``) over an embedded store, with the handlers
  of chosen methods made to block until the client gives up: unary calls answer, the stalled
  streams never send a message (or, for ``ModifyFile``, never read nor answer).

Each operation raises the typed ``Unavailable`` naming the call and the address, and ends well under
a generous bound; a big download read slowly is not cut.
"""

from __future__ import annotations

import socket
import threading
import time

import grpc
import pytest

from jupyterlab_pachls.pfs import LocalBackend, open_backend
from jupyterlab_pachls.pfs.errors import InvalidArgument, Unavailable
from jupyterlab_pachls.pfs.server import make_server

RPC_TIMEOUT = 2.0  # every call of a test must fit in it, on a loaded machine too
BOUND = 60.0  # generous: the calls must end, not be fast

STREAMS = ("ListRepo", "ListBranch", "ListCommit", "ListFile", "DiffFile", "GetFile", "ModifyFile")


class SilentTcpServer:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # kept open, never read from nor written to

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class Stall(grpc.ServerInterceptor):
    """The handlers of ``methods`` (``/pfs_v2.API/ListRepo``; None: every method) block, sending
    nothing, until the client's call ends (its deadline or cancellation); every other method is served
    as usual. ``active`` cleared: nothing stalls."""

    def __init__(self, methods=None) -> None:
        self.methods = None if methods is None else set(methods)
        self.stalled = threading.Event()
        self.active = threading.Event()
        self.active.set()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or not self.active.is_set():
            return handler
        if self.methods is not None and details.method not in self.methods:
            return handler

        def blocked(request, context):
            self.stalled.set()
            while context.is_active():
                time.sleep(0.02)
            context.abort(grpc.StatusCode.CANCELLED, "the client gave up")

        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            if getattr(handler, kind) is not None:
                return getattr(grpc, f"{kind}_rpc_method_handler")(
                    blocked, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)
        return handler


def bounded(call):
    """``call``'s typed Unavailable, checked to have ended within the generous bound."""
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    assert time.monotonic() - started < BOUND
    return info.value


@pytest.fixture
def served(tmp_path):
    """An embedded store with one repo, two commits, a directory and a file of three GetFile chunks."""
    store = LocalBackend(tmp_path / "served")
    store.create_repo("r")
    with store.commit("r", "master", message="one") as c:
        c.put_file("/dir/a.txt", b"a")
        c.put_file("/big.bin", bytes(range(256)) * (3 * 4096 + 7))
    with store.commit("r", "master", message="two") as c:
        c.put_file("/dir/b.txt", b"b")
    yield store
    store.close()


def stalled_cluster(store, methods, rpc_timeout=RPC_TIMEOUT):
    stall = Stall(methods)
    server, port = make_server(store, "127.0.0.1:0", interceptors=(stall,))
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}",
                            "connect_timeout": 2.0, "rpc_timeout": rpc_timeout})
    return server, backend, stall


OPERATIONS = {
    "ListRepo": lambda b: b.list_repos(),
    "ListBranch": lambda b: b.list_branches("r"),
    "ListCommit": lambda b: b.list_commits("r", "master"),
    "ListFile": lambda b: b.list_dir("r", "master", "/dir"),
    "DiffFile": lambda b: b.diff("r", "master^", "master"),
    "GetFile": lambda b: b.read_file("r", "master", "/big.bin"),
    "ModifyFile": lambda b: b.put_files(b.start_commit("r", "master", message="stuck"), [("/c.txt", b"c")]),
}


@pytest.mark.parametrize("method", STREAMS)
def test_a_stream_the_cluster_never_answers_is_a_typed_unavailable_naming_the_call(served, method):
    server, backend, stall = stalled_cluster(served, [f"/pfs_v2.API/{method}"])
    try:
        error = bounded(lambda: OPERATIONS[method](backend))
        assert stall.stalled.is_set()  # the stream itself was reached and stalled, not an earlier call
        assert error.details["address"] == backend.address
        assert method in error.message and backend.address in error.message
        # the same backend goes on answering what the cluster does answer
        assert backend.inspect_branch("r", "master").head is not None
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_a_download_read_slowly_is_not_cut_by_the_idle_deadline(served):
    server, backend, _ = stalled_cluster(served, [])
    try:
        chunks = backend.read_file("r", "master", "/big.bin")
        first = next(chunks)
        time.sleep(3 * RPC_TIMEOUT)  # the reader's time with a chunk is not the cluster's silence
        assert first + b"".join(chunks) == bytes(range(256)) * (3 * 4096 + 7)
        assert len(first) < 3 * 1024 * 1024  # it did come in several messages
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_an_upload_made_slowly_is_not_cut_by_the_idle_deadline(served):
    server, backend, _ = stalled_cluster(served, [])
    try:
        def slowly_made():
            yield "/slow/1.txt", b"one"
            time.sleep(3 * RPC_TIMEOUT)  # the caller's time making the next file is not the cluster's silence
            yield "/slow/2.txt", b"two"

        with backend.commit("r", "master", message="slow") as c:
            assert backend.put_files(c.commit, slowly_made()) == 2
        assert b"".join(backend.read_file("r", "master", "/slow/2.txt")) == b"two"
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_the_health_probe_of_a_cluster_that_never_answers_waits_seconds_not_the_call_deadline(served):
    server, backend, stall = stalled_cluster(served, None, rpc_timeout=3600.0)  # every method stalls
    try:
        error = bounded(backend.ping)  # bounded by connect_timeout (2 s here), not rpc_timeout
        assert stall.stalled.is_set()
        assert "InspectProject" in error.message and error.details["address"] == backend.address
        stall.active.clear()
        backend.ping()  # the cluster answers again: so does the probe, on the same backend
    finally:
        backend.close()
        server.stop(grace=None).wait()


async def test_the_health_route_answers_while_the_cluster_never_does(served, api):
    stall = Stall()
    stall.active.clear()
    server, port = make_server(served, "127.0.0.1:0", interceptors=(stall,))
    address = f"grpc://127.0.0.1:{port}"
    try:
        status, body = await api("PUT", "backend", {"kind": "pachyderm", "pachd_address": address})
        assert status == 200 and body["connected"], body
        stall.active.set()
        started = time.monotonic()
        status, body = await api("GET", "health")
        assert time.monotonic() - started < BOUND
        assert status == 200 and body["backend"]["connected"] is False, body
        assert "InspectProject" in body["backend"]["error"] and address in body["backend"]["error"]
        stall.active.clear()
        status, body = await api("GET", "health")
        assert status == 200 and body["backend"]["connected"] is True, body
    finally:
        server.stop(grace=None).wait()


def test_every_operation_against_a_tcp_server_that_never_answers_is_unavailable():
    """The channel never becomes ready against it: readiness (connect_timeout), before any call
    deadline, ends each operation with the typed error."""
    silent = SilentTcpServer()
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{silent.port}",
                            "connect_timeout": 1.0, "rpc_timeout": RPC_TIMEOUT})
    try:
        for method, operation in [*OPERATIONS.items(), ("InspectProject", lambda b: b.ping())]:
            error = bounded(lambda: operation(backend))
            assert error.details["address"] == backend.address, method
        assert silent.accepted  # the client did connect: the silence, not a refused port, was met
    finally:
        backend.close()
        silent.close()


@pytest.mark.parametrize("value", [0, -1, "5", True, None])
def test_a_deadline_that_is_not_a_positive_number_is_refused(value):
    with pytest.raises(InvalidArgument):
        open_backend({"kind": "pachyderm", "pachd_address": "grpc://127.0.0.1:1", "rpc_timeout": value})
