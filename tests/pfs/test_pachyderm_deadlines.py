"""Deadlines of the Pachyderm client: a cluster that accepts connections and never answers cannot
hold a caller. Everything goes through the real ``PachydermBackend`` and ``pachyderm_sdk`` over real
gRPC on 127.0.0.1, against two stand-ins for such a cluster:

- a TCP server that accepts connections and never sends a byte (no HTTP/2 handshake ever);
- the package's real Pachyderm-API server (``make_server``) over an embedded store, with the handlers
  of chosen methods made to block until the client gives up: unary calls answer, the stalled
  streams never send a message (or, for ``ModifyFile``, never read nor answer).

Each operation raises the typed ``Unavailable`` naming the call and the address, and ends well under
a generous bound; the quick reads the panel polls end within their own short deadline however long
the other calls may take, a wait for a commit to finish is not cut by it, and a stream (or a big
download) whose messages keep coming is not cut for its length.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import grpc
import pytest

from pachyderm_sdk.api import pfs

from jupyterlab_pachls.pfs import LocalBackend, open_backend
from jupyterlab_pachls.pfs.errors import InvalidArgument, Unavailable
from jupyterlab_pachls.pfs.pachyderm.channel import Stalls
from jupyterlab_pachls.pfs.pachyderm.messages import repo_key
from jupyterlab_pachls.pfs.server import make_server
from jupyterlab_pachls.pfs.wire import commit_msg

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
        self.calls: dict[str, int] = {}  # stalled calls by method
        self.active = threading.Event()
        self.active.set()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or not self.active.is_set():
            return handler
        if self.methods is not None and details.method not in self.methods:
            return handler

        def blocked(request, context):
            self.calls[details.method] = self.calls.get(details.method, 0) + 1
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


class Slow(grpc.ServerInterceptor):
    """The streams of ``methods`` send each message ``pause`` seconds after the one before (the first
    too): a cluster that keeps answering, slowly."""

    def __init__(self, methods, pause: float) -> None:
        self.methods = set(methods)
        self.pause = pause

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or details.method not in self.methods or handler.unary_stream is None:
            return handler
        inner = handler.unary_stream

        def slowly(request, context):
            for reply in inner(request, context):
                time.sleep(self.pause)
                yield reply

        return grpc.unary_stream_rpc_method_handler(slowly, request_deserializer=handler.request_deserializer,
                                                    response_serializer=handler.response_serializer)


class LateFirst(grpc.ServerInterceptor):
    """The streams of ``methods`` send their first message ``pause`` seconds late, the rest at once: pachd
    building a whole ListRepo reply (auth checks, each repo's size) before sending any of it."""

    def __init__(self, methods, pause: float) -> None:
        self.methods = set(methods)
        self.pause = pause

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or details.method not in self.methods or handler.unary_stream is None:
            return handler
        inner = handler.unary_stream

        def late(request, context):
            replies = list(inner(request, context))
            time.sleep(self.pause)
            yield from replies

        return grpc.unary_stream_rpc_method_handler(late, request_deserializer=handler.request_deserializer,
                                                    response_serializer=handler.response_serializer)


class SlowReads(grpc.ServerInterceptor):
    """The unary calls of ``methods`` answer ``pause`` seconds late: a cluster slow to read its metadata."""

    def __init__(self, methods, pause: float) -> None:
        self.methods = set(methods)
        self.pause = pause

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or details.method not in self.methods or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def slowly(request, context):
            time.sleep(self.pause)
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(slowly, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


def eventually(call):
    """``call``'s answer once it stops raising Unavailable (a cluster that came back is seen again
    within a quick deadline), within the generous bound."""
    started = time.monotonic()
    while True:
        try:
            return call()
        except Unavailable:
            if time.monotonic() - started > BOUND:
                raise
            time.sleep(0.1)


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


def stalled_cluster(store, methods, rpc_timeout=RPC_TIMEOUT, quick_rpc_timeout=RPC_TIMEOUT, interceptor=None):
    stall = Stall(methods) if interceptor is None else interceptor
    server, port = make_server(store, "127.0.0.1:0", interceptors=(stall,))
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}",
                            "connect_timeout": 2.0, "rpc_timeout": rpc_timeout,
                            "quick_rpc_timeout": quick_rpc_timeout})
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


#: The quick reads (what the panel polls), each with the method it makes.
QUICK_READS = {
    "InspectProject": lambda b: b.ping(),
    "ListRepo": lambda b: b.list_repos(),
    "InspectRepo": lambda b: b.inspect_repo("r"),
    "ListBranch": lambda b: b.list_branches("r"),
    "InspectBranch": lambda b: b.inspect_branch("r", "master"),
    "InspectCommit": lambda b: b.inspect_commit("r", "master"),
    "ListCommit": lambda b: b.list_commits("r", "master"),
}


@pytest.mark.parametrize("method", sorted(QUICK_READS))
def test_a_quick_read_the_cluster_never_answers_ends_within_the_quick_deadline(served, method):
    # the long deadline is far beyond the bound: only the quick one can end the call in time. ListRepo's
    # first message may take the long deadline while the cluster answers: here the whole cluster stalls
    stalled = None if method == "ListRepo" else [f"/pfs_v2.API/{method}"]
    server, backend, stall = stalled_cluster(served, stalled, rpc_timeout=3600.0)
    try:
        error = bounded(lambda: QUICK_READS[method](backend))
        assert stall.stalled.is_set()
        assert method in error.message and error.details["address"] == backend.address
        assert f"{RPC_TIMEOUT:g} s" in error.message  # it says which deadline ran out
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_waiting_for_a_commit_to_finish_is_not_cut_by_the_quick_deadline(served):
    server, backend, _ = stalled_cluster(served, [], rpc_timeout=3600.0, quick_rpc_timeout=1.0)
    opened = served.start_commit("r", "master", message="finishes later")
    waited: dict = {}

    def wait_finished():
        try:
            waited["info"] = backend.channel.rpc("InspectCommit", backend.channel.pfs.inspect_commit,
                                                 commit=commit_msg(repo_key("r"), opened.id),
                                                 wait=pfs.CommitState.FINISHED)
        except Exception as exc:
            waited["error"] = exc

    waiter = threading.Thread(target=wait_finished)
    try:
        waiter.start()
        time.sleep(3.0)  # three quick deadlines: the wait is still on
        assert waiter.is_alive(), waited
        served.finish_commit(opened)
        waiter.join(BOUND)
        assert "error" not in waited and waited["info"].finished
    finally:
        waiter.join(BOUND)
        backend.close()
        server.stop(grace=None).wait()


@pytest.mark.parametrize("method, deadline", [("ListRepo", "quick_rpc_timeout"), ("DiffFile", "rpc_timeout")])
def test_a_stream_whose_messages_keep_coming_is_not_cut_for_its_length(served, method, deadline):
    for n in range(4):
        served.create_repo(f"more{n}")
    with served.commit("r", "master", message="many") as c:
        for n in range(5):
            c.put_file(f"/many/{n}.txt", b"n")
    pause = 0.5  # each message within the idle deadline; all of them together well beyond it
    deadlines = {"rpc_timeout": 3600.0, "quick_rpc_timeout": 3600.0, deadline: 2.0}
    server, backend, _ = stalled_cluster(served, [], interceptor=Slow([f"/pfs_v2.API/{method}"], pause), **deadlines)
    try:
        started = time.monotonic()
        answer = backend.list_repos() if method == "ListRepo" else backend.diff("r", "master^", "master")
        assert len(answer) >= 5 and time.monotonic() - started > 2.0  # it did outlast the deadline
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_a_list_repo_reply_built_whole_beyond_the_quick_deadline_is_waited_for(served):
    # pachd sends nothing of ListRepo until it has the whole reply; the cluster answers other reads meanwhile
    for n in range(3):
        served.create_repo(f"more{n}")
    server, backend, _ = stalled_cluster(served, [], interceptor=LateFirst(["/pfs_v2.API/ListRepo"], 2.5),
                                         rpc_timeout=30.0, quick_rpc_timeout=1.0)
    try:
        assert [r.name for r in backend.list_repos()] == ["more0", "more1", "more2", "r"]
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_a_commit_whose_reads_outlast_the_quick_deadline_lands_while_polls_are_refused(served):
    slow = SlowReads([f"/pfs_v2.API/{m}" for m in ("InspectRepo", "InspectBranch", "InspectCommit")], 1.5)
    server, backend, _ = stalled_cluster(served, [], interceptor=slow, rpc_timeout=60.0, quick_rpc_timeout=1.0)
    try:
        bounded(lambda: backend.inspect_branch("r", "master"))  # a poll's read runs out: polls are refused
        with backend.commit("r", "master", message="slow reads") as c:
            c.put_file("/slow.txt", b"landed")
        assert c.finished is not None
        assert b"".join(served.read_file("r", "master", "/slow.txt")) == b"landed"  # read where it is kept
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
        error = bounded(backend.ping)  # bounded by quick_rpc_timeout (2 s here), not rpc_timeout
        assert stall.stalled.is_set()
        assert "InspectProject" in error.message and error.details["address"] == backend.address
        stall.active.clear()
        eventually(backend.ping)  # the cluster answers again: so does the probe, on the same backend
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_a_quick_read_that_ran_out_is_not_asked_again_until_the_cluster_answers(served):
    server, backend, stall = stalled_cluster(served, None, rpc_timeout=3600.0)  # every method stalls
    try:
        first = bounded(backend.list_repos)
        asked = stall.calls["/pfs_v2.API/ListRepo"]
        again = bounded(backend.list_repos)  # refused without asking: it would hold a thread for nothing
        assert stall.calls["/pfs_v2.API/ListRepo"] == asked
        assert "ListRepo" in again.message and again.details == first.details
        bounded(lambda: backend.inspect_branch("r", "master"))  # other reads are still asked
        assert stall.calls["/pfs_v2.API/InspectBranch"] == 1
        stall.active.clear()  # the cluster answers again: the probe sees it, and the reads are asked again
        assert [r.name for r in eventually(backend.list_repos)] == ["r"]
    finally:
        backend.close()
        server.stop(grace=None).wait()


def test_a_stall_probe_that_fails_unexpectedly_asks_again_until_the_cluster_answers():
    failures = ["probe broke"]

    def probe():  # the first ask fails with what no call should raise; the next one is answered
        if failures:
            raise RuntimeError(failures.pop())

    stalls = Stalls(probe, closed=lambda: False)
    stalls.ran_out("/pfs_v2.API/ListRepo", Unavailable("ListRepo got nothing", address="grpc://x"))
    started = time.monotonic()
    while True:
        try:
            stalls.refuse("/pfs_v2.API/ListRepo")
            break  # asked again: the probe saw the cluster answer
        except Unavailable:
            assert time.monotonic() - started < BOUND
            time.sleep(0.05)
    assert not failures


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
        started = time.monotonic()
        while True:  # seen again within a quick deadline (the probe's call in flight ends first)
            status, body = await api("GET", "health")
            if body["backend"]["connected"] or time.monotonic() - started > BOUND:
                break
            await asyncio.sleep(0.2)
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


@pytest.mark.parametrize("name", ["rpc_timeout", "quick_rpc_timeout", "connect_timeout"])
@pytest.mark.parametrize("value", [0, -1, "5", True, None])
def test_a_deadline_that_is_not_a_positive_number_is_refused(name, value):
    with pytest.raises(InvalidArgument) as info:
        open_backend({"kind": "pachyderm", "pachd_address": "grpc://127.0.0.1:1", name: value})
    assert name in info.value.message
