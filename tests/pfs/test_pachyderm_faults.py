"""The Pachyderm API going away mid-call: ``PachydermBackend`` against the package's Pachyderm-API
gRPC server, stopped (all its calls cancelled, the port closed) at chosen points of a commit, then
started again on the same port over the same store.

Every failure is a typed ``Unavailable`` naming the address; nothing half-done is visible on the
branch, nothing is left behind once the server is back, the same backend object reconnects by itself,
and the next commit lands.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from jupyterlab_pachls.pfs import LocalBackend, open_backend
from jupyterlab_pachls.pfs.errors import Unavailable
from jupyterlab_pachls.pfs.pachyderm import STAGING_PREFIX
from jupyterlab_pachls.pfs.server import make_server


class StopAt(grpc.ServerInterceptor):
    """Stop the whole server at the ``n``-th call of ``method`` (``/pfs_v2.API/<Name>``), before or after
    the served backend handled it, as a process that dies there would (the client sees its call cut)."""

    def __init__(self, method: str | None = None, n: int = 1, *, after: bool = False) -> None:
        self.method, self.n, self.after = method, n, after
        self.seen = 0
        self.server: grpc.Server | None = None
        self.fired = threading.Event()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if self.method is None or not details.method.endswith("/" + self.method) or handler is None:
            return handler
        self.seen += 1
        if self.seen != self.n:
            return handler
        if handler.unary_unary is not None:
            inner, kind = handler.unary_unary, "unary_unary"
        elif handler.stream_unary is not None:
            inner, kind = handler.stream_unary, "stream_unary"
        else:
            return handler

        def dying(request, context):
            if self.after:
                inner(request, context)
            self.fired.set()
            self.server.stop(grace=None)
            while context.is_active():
                time.sleep(0.01)
            context.abort(grpc.StatusCode.CANCELLED, "server stopped")

        make = getattr(grpc, f"{kind}_rpc_method_handler")
        return make(dying, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


class Cluster:
    """The served store and a server on a fixed port that can be stopped and started again."""

    def __init__(self, path) -> None:
        self.served = LocalBackend(path)
        self.server, self.port = make_server(self.served, "127.0.0.1:0")
        self.address = f"grpc://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace=None).wait()

    def start(self, *interceptors: StopAt) -> None:
        self.server, _ = make_server(self.served, f"127.0.0.1:{self.port}", interceptors=interceptors)
        for i in interceptors:
            i.server = self.server

    def close(self) -> None:
        self.stop()
        self.served.close()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "served")
    yield c
    c.close()


@pytest.fixture
def backend(cluster):
    b = open_backend({"kind": "pachyderm", "pachd_address": cluster.address, "connect_timeout": 2.0})
    yield b
    b.close()


def eventually(fn, timeout: float = 30.0):
    """Call ``fn`` until it stops raising Unavailable (the channel reconnects by itself)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_every_call_to_a_stopped_server_is_a_typed_unavailable_naming_the_address(cluster, backend):
    backend.create_repo("r")
    for trial in range(4):  # the first call after the stop used to escape as a bare ConnectionError
        cluster.stop()
        for call in (backend.list_repos, lambda: backend.inspect_branch("r", "master"),
                     lambda: backend.start_commit("r", "master", message="x")):
            with pytest.raises(Unavailable) as info:
                call()
            assert info.value.details["address"] == cluster.address
            assert cluster.address in info.value.message and "does not answer" in info.value.message
        cluster.start()
        assert [r.name for r in eventually(backend.list_repos)] == ["r"]  # the same object reconnects


POINTS = [
    # (RPC, which call of it, after the server handled it): where a mount commit's run is cut
    pytest.param("ModifyFile", 1, False, id="uploading-to-the-staged-commit"),
    pytest.param("FinishCommit", 1, True, id="staged-commit-finished"),
    pytest.param("StartCommit", 1, True, id="landing-started-reply-lost"),
    pytest.param("ModifyFile", 2, False, id="copying-into-the-landing-commit"),
]


@pytest.mark.parametrize("method,n,after", POINTS)
def test_server_stopped_mid_commit_leaves_no_half_commit_and_the_next_commit_lands(
        cluster, backend, method, n, after):
    backend.create_repo("r")
    with backend.commit("r", "master", message="base") as c:
        c.put_file("/keep.txt", b"keep")
    base = c.finished.id

    opened = backend.start_commit("r", "master", message="cut short", author="ana")
    cluster.stop()
    stop = StopAt(method, n, after=after)
    cluster.start(stop)
    with pytest.raises(Unavailable) as info:  # as MountManager._commit runs it
        try:
            backend.put_files(opened, [("/new.txt", b"new"), ("/keep.txt", b"changed")])
            backend.finish_commit(opened, expected_parent=base)
        except BaseException:
            try:
                backend.abort_commit(opened)
            except Unavailable:
                pass
            raise
    assert stop.fired.is_set()
    assert info.value.details["address"] == cluster.address

    cluster.start()
    head = eventually(lambda: backend.inspect_branch("r", "master")).head
    assert head.id == base  # nothing half-done on the branch
    assert backend.get_file("r", "master", "/keep.txt") == b"keep"
    assert [b.name for b in backend.list_branches("r")] == ["master"]

    # the retry (a new commit of the same changes, as the mount does) lands on the branch at once
    retry = backend.start_commit("r", "master", message="retry", author="ana")
    backend.put_files(retry, [("/new.txt", b"new"), ("/keep.txt", b"changed")])
    landed = backend.finish_commit(retry, expected_parent=base)
    assert landed.parent == base and backend.inspect_branch("r", "master").head.id == landed.id
    assert backend.get_file("r", "master", "/new.txt") == b"new"
    # what the cut left behind in the cluster (staging branch, open commits) is gone
    served = [b.name for b in cluster.served.list_branches("r")]
    assert served == ["master"], served
    assert [c.message for c in backend.list_commits("r", "master")][:2] == ["retry", "base"]
