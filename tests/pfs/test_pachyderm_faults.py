"""The Pachyderm API going away mid-call: ``PachydermBackend`` against the package's Pachyderm-API
gRPC server, stopped (all its calls cancelled, the port closed) at chosen points of a commit, then
started again on the same port over the same store.

Every failure is a typed ``Unavailable`` naming the address; nothing half-done is visible on the
branch, nothing is left behind once the server is back, the same backend object reconnects by itself,
and the next commit lands.
"""

from __future__ import annotations

import pytest
from stoppable_cluster import Cluster, StopAt, eventually

from jupyterlab_pachls.pfs import open_backend
from jupyterlab_pachls.pfs.errors import Unavailable


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
