"""The repos listing on a Pachyderm backend asks the cluster only for what may have moved.

``PachydermBackend`` over real gRPC to the Pachyderm-API server (``make_server``) with a server
interceptor that counts each call it receives. A poll of an unchanged cluster is ListRepo and one
ListBranch of every repo, however many repos and branches there are; a head not seen before costs
one InspectCommit. The listing stays what a cold backend (and InspectBranch per branch) shows after
each kind of change: commit, branch move, rollback, repo and branch deletion, a landing in progress.
"""

from __future__ import annotations

import collections
import json
import threading

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from jupyterlab_pachls.listing import ReposListing
from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.pachyderm import META_REPO, STAGING_PREFIX, PachydermBackend
from jupyterlab_pachls.pfs.pachyderm import backend as backend_module
from jupyterlab_pachls.pfs.server import make_server

TOKEN = "listing-test-token-0123456789abcdef"


class CallCounter(grpc.ServerInterceptor):
    """Counts the calls the server receives, by method name (``ListBranch``)."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def intercept_service(self, continuation, handler_call_details):
        with self._lock:
            self.calls[handler_call_details.method.rsplit("/", 1)[-1]] += 1
        return continuation(handler_call_details)

    def taken(self) -> dict[str, int]:
        """The calls counted since the last ``taken``."""
        with self._lock:
            counted, self.calls = dict(self.calls), collections.Counter()
        return counted


def serve(tmp_path, auth_token=None):
    store = LocalBackend(tmp_path / "served-store")
    counter = CallCounter()
    server, port = make_server(store, "127.0.0.1:0", interceptors=(counter,), auth_token=auth_token)
    return store, counter, server, port


@pytest.fixture
def cluster(tmp_path):
    store, counter, server, port = serve(tmp_path)
    backend = PachydermBackend(pachd_address=f"grpc://127.0.0.1:{port}")
    yield store, counter, backend, port
    backend.close()
    server.stop(grace=None).wait()
    store.close()


def add_repos(store: LocalBackend, first: int, count: int, branches: int = 3) -> None:
    """Repos made in the served store itself (quick), each with a commit on every branch."""
    for i in range(first, first + count):
        name = f"repo{i:03d}"
        store.create_repo(name)
        with store.commit(name, "master", message="init") as c:
            c.put_file("/a.txt", name.encode())
        for b in range(1, branches):
            store.create_branch(name, f"b{b}", head="master")


def listed(listing: ReposListing) -> dict:
    return json.loads(listing.load()[0])


def heads(body: dict) -> dict[str, dict[str, str | None]]:
    return {r["name"]: {b["name"]: b["head"]["id"] if b["head"] else None for b in r["branches"]}
            for r in body["repos"]}


def assert_right(body: dict, port: int) -> None:
    """The listing is what a backend that knows nothing shows, and each branch what InspectBranch shows."""
    cold = PachydermBackend(pachd_address=f"grpc://127.0.0.1:{port}")
    try:
        assert body == listed(ReposListing(cold))
        for repo in body["repos"]:
            for branch in repo["branches"]:
                assert cold.inspect_branch(repo["name"], branch["name"]).to_json()["head"] == branch["head"]
    finally:
        cold.close()


def test_an_unchanged_poll_costs_the_same_calls_however_many_repos(cluster):
    store, counter, backend, _ = cluster
    listing = ReposListing(backend)
    add_repos(store, 0, 3)
    listed(listing)
    counter.taken()
    listed(listing)
    few = counter.taken()
    add_repos(store, 3, 30)
    assert len(listed(listing)["repos"]) == 33
    counter.taken()
    body, etag = listing.load()
    many = counter.taken()
    assert many == few == {"ListRepo": 1, "ListBranch": 1}
    assert listing.load() == (body, etag)  # nothing moved: the same body and ETag


def test_a_poll_after_a_commit_inspects_only_the_new_head(cluster):
    store, counter, backend, port = cluster
    listing = ReposListing(backend)
    add_repos(store, 0, 20)
    before = listed(listing)
    with backend.commit("repo007", "b1", message="one more") as c:
        c.put_file("/b.txt", b"b")
    counter.taken()
    after = listed(listing)
    assert counter.taken() == {"ListRepo": 1, "ListBranch": 1, "InspectCommit": 1}
    assert heads(after)["repo007"]["b1"] == c.finished.id
    moved = {(r, b) for r, bs in heads(after).items() for b, h in bs.items() if heads(before)[r][b] != h}
    assert moved == {("repo007", "b1")}
    assert_right(after, port)


def test_the_listing_follows_moves_rollbacks_and_deletions(cluster):
    store, counter, backend, port = cluster
    listing = ReposListing(backend)
    add_repos(store, 0, 4)
    first = heads(listed(listing))["repo001"]["master"]
    with backend.commit("repo001", "master", message="second") as c:
        c.put_file("/b.txt", b"b")
    assert heads(listed(listing))["repo001"]["master"] == c.finished.id

    backend.move_branch("repo001", "master", first)  # a rollback: back to a head seen before
    body = listed(listing)
    assert heads(body)["repo001"]["master"] == first
    assert META_REPO not in heads(body)  # the rollback was recorded there, hidden as before
    assert_right(body, port)

    backend.move_branch("repo001", "b1", c.finished.id)  # a move to a head known on another branch
    backend.create_branch("repo002", "copy", head="master")
    body = listed(listing)
    assert heads(body)["repo001"]["b1"] == c.finished.id
    assert heads(body)["repo002"]["copy"] == heads(body)["repo002"]["master"]
    assert_right(body, port)

    backend.delete_branch("repo002", "b2")
    backend.delete_repo("repo003")
    store.create_branch("repo000", "empty")  # a branch without a head (made in the store itself)
    body = listed(listing)
    assert "b2" not in heads(body)["repo002"] and "repo003" not in heads(body)
    assert heads(body)["repo000"]["empty"] is None
    assert_right(body, port)


def test_an_open_landing_shows_its_parent_and_staging_branches_stay_hidden(cluster):
    store, counter, backend, port = cluster
    listing = ReposListing(backend)
    add_repos(store, 0, 2)
    finished = heads(listed(listing))["repo000"]["master"]

    staged = backend.start_commit("repo001", "master", message="open")  # staged on a private branch
    client = Client("127.0.0.1", port)
    landing = client.pfs.start_commit(branch=pfs.Branch.from_uri("repo000@master"))  # open at the head
    body = listed(listing)
    assert heads(body)["repo000"]["master"] == finished
    assert not [b for r in heads(body).values() for b in r if b.startswith(STAGING_PREFIX)]
    assert_right(body, port)
    counter.taken()
    listed(listing)
    assert counter.taken()["InspectCommit"] == 2  # an open head is asked again on each poll (and its parent)

    client.pfs.finish_commit(commit=landing)
    client.pfs.wait_commit(landing)
    body = listed(listing)
    assert heads(body)["repo000"]["master"] == landing.id
    assert_right(body, port)
    backend.abort_commit(staged)


def test_a_first_commit_open_during_a_poll_shows_once_it_is_finished(cluster):
    store, counter, backend, port = cluster
    listing = ReposListing(backend)
    store.create_repo("fresh")
    client = Client("127.0.0.1", port)
    landing = client.pfs.start_commit(branch=pfs.Branch.from_uri("fresh@master"))  # no parent
    assert heads(listed(listing))["fresh"]["master"] is None  # readers see nothing yet
    client.pfs.finish_commit(commit=landing)
    client.pfs.wait_commit(landing)
    body = listed(listing)
    assert heads(body)["fresh"]["master"] == landing.id
    assert_right(body, port)


class DeletesAfterListBranch(grpc.ServerInterceptor):
    """Deletes ``repo`` from the store right after the first ListBranch sent its replies: a repo deleted
    by someone else between a listing's ListBranch and its InspectCommit of a new head."""

    def __init__(self, store: LocalBackend, repo: str) -> None:
        self.store, self.repo = store, repo
        self.done = threading.Event()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or not details.method.endswith("/ListBranch") or self.done.is_set():
            return handler
        inner = handler.unary_stream

        def then_delete(request, context):
            yield from inner(request, context)
            self.store.delete_repo(self.repo)
            self.done.set()

        return grpc.unary_stream_rpc_method_handler(then_delete, request_deserializer=handler.request_deserializer,
                                                    response_serializer=handler.response_serializer)


def test_a_repo_deleted_during_a_listing_leaves_out_its_branches_only(tmp_path):
    store = LocalBackend(tmp_path / "served-store")
    add_repos(store, 0, 3)
    deleting = DeletesAfterListBranch(store, "repo001")
    server, port = make_server(store, "127.0.0.1:0", interceptors=(deleting,))
    backend = PachydermBackend(pachd_address=f"grpc://127.0.0.1:{port}")
    try:
        branches = backend.list_branches()
        assert deleting.done.is_set()
        assert sorted({b.repo for b in branches}) == ["repo000", "repo002"]
        assert all(b.head is not None for b in branches)
    finally:
        backend.close()
        server.stop(grace=None).wait()
        store.close()


def test_what_the_listing_keeps_is_bounded_by_the_cluster_not_by_its_history(cluster):
    store, counter, backend, port = cluster
    listing = ReposListing(backend)
    add_repos(store, 0, 3)  # 9 branches
    listed(listing)
    for n in range(6):  # each commit moves a head: new replies, a new head to keep
        with backend.commit("repo001", "master", message=f"move {n}") as c:
            c.put_file("/n.txt", str(n).encode())
        assert heads(listed(listing))["repo001"]["master"] == c.finished.id
    # this listing's 9 branches, and the head the one before saw and this one did not
    assert len(backend._listed) <= 9 + 1
    assert len(backend._branch_replies.kept) <= 9 + 1
    assert len(backend._repo_replies.kept) <= 3 + 1


def test_a_head_re_parented_by_a_squash_is_listed_anew_once_rechecked(cluster, monkeypatch):
    store, counter, backend, port = cluster
    store.create_repo("r")
    ids = []
    for n in range(3):
        with store.commit("r", "master", message=f"c{n}") as c:
            c.put_file(f"/f{n}", b"x")
        ids.append(c.finished.id)
    listing = ReposListing(backend)
    assert listed(listing)["repos"][0]["branches"][0]["head"]["parent"] == ids[1]
    Client("127.0.0.1", port).pfs.squash_commit_set(commit_set=pfs.CommitSet(id=ids[1]))  # head's parent now ids[0]
    monkeypatch.setattr(backend_module, "LISTED_RECHECK", 0.0)  # every kept head is due
    body = listed(listing)
    assert body["repos"][0]["branches"][0]["head"]["parent"] == ids[0]
    assert_right(body, port)


def test_with_auth_on_branches_are_listed_per_repo_and_heads_are_still_known(tmp_path):
    store, counter, server, port = serve(tmp_path, auth_token=TOKEN)
    backend = PachydermBackend(pachd_address=f"grpc://127.0.0.1:{port}", auth_token=TOKEN)
    try:
        add_repos(store, 0, 3)
        with pytest.raises(grpc.RpcError) as refused:  # pachd refuses every repo's branches with auth on
            list(Client("127.0.0.1", port, auth_token=TOKEN).pfs.list_branch())
        assert refused.value.code() == grpc.StatusCode.UNKNOWN
        assert "Cannot list branches from all repos with auth activated" in refused.value.details()

        listing = ReposListing(backend)
        body = listed(listing)
        assert sorted(heads(body)) == ["repo000", "repo001", "repo002"]
        assert all(h is not None for r in heads(body).values() for h in r.values())
        counter.taken()
        listed(listing)
        assert counter.taken() == {"ListRepo": 1, "ListBranch": 3}  # the branches of the repos just listed
    finally:
        backend.close()
        server.stop(grace=None).wait()
        store.close()
