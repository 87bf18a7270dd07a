"""The first listing of a cluster inspects the heads it has not seen a few at a time, not one after
another: ``PachydermBackend`` over real gRPC to the Pachyderm-API server, whose InspectCommit handler
is made to take a moment (a cluster across a network) so that calls in flight at once can be counted.
"""

from __future__ import annotations

import threading
import time

import grpc

from jupyterlab_pachls.listing import ReposListing
from jupyterlab_pachls.pfs.pachyderm import PachydermBackend
from jupyterlab_pachls.pfs.pachyderm.backend import INSPECTED_AT_ONCE
from jupyterlab_pachls.pfs.server import make_server

from .test_pachyderm_listing_rpcs import CallCounter, add_repos, assert_right, listed

REPOS, BRANCHES = 8, 3
ROUND_TRIP = 0.02  # seconds each InspectCommit takes on the server


class InFlight(grpc.ServerInterceptor):
    """InspectCommit takes ROUND_TRIP seconds; counts how many were in flight at once (the most)."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or not details.method.endswith("/InspectCommit"):
            return handler
        inner = handler.unary_unary

        def slowly(request, context):
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(ROUND_TRIP)
                return inner(request, context)
            finally:
                with self._lock:
                    self.now -= 1

        return grpc.unary_unary_rpc_method_handler(slowly, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


def test_the_first_listing_inspects_unseen_heads_a_few_at_a_time(tmp_path):
    from jupyterlab_pachls.pfs import LocalBackend

    store = LocalBackend(tmp_path / "served-store")
    add_repos(store, 0, REPOS, BRANCHES)
    counter, in_flight = CallCounter(), InFlight()
    server, port = make_server(store, "127.0.0.1:0", interceptors=(counter, in_flight))
    backend = PachydermBackend(pachd_address=f"grpc://127.0.0.1:{port}")
    try:
        body = listed(ReposListing(backend))
        calls = counter.taken()
        assert calls["InspectCommit"] == REPOS * BRANCHES  # each head once, as before
        assert 1 < in_flight.most <= INSPECTED_AT_ONCE  # several at once, never more than the bound
        assert not [t for t in threading.enumerate() if t.name.startswith("pachls-listing")]  # none left
        assert_right(body, port)  # what a cold backend and InspectBranch per branch show

        in_flight.most = 0
        counter.taken()
        assert listed(ReposListing(backend)) == body  # seen heads are not asked again
        assert "InspectCommit" not in counter.taken() and in_flight.most == 0
    finally:
        backend.close()
        server.stop(grace=None).wait()
        store.close()
