"""``pachyderm_sdk.Client`` against the Pachyderm-API server, over real gRPC on 127.0.0.1.

These pin down what a Pachyderm client can observe: messages, streams, status codes,
the default project, open vs finished commits. They also cover how ``PachydermBackend``
finds and reaches its cluster (config file, unreachable address).
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from jupyterlab_pachls.pfs import Conflict, LocalBackend, NotFound, Unavailable
from jupyterlab_pachls.pfs.pachyderm import PachydermBackend
from jupyterlab_pachls.pfs.server import make_server


@pytest.fixture
def served(tmp_path):
    store = LocalBackend(tmp_path / "store")
    server, port = make_server(store, "127.0.0.1:0")
    yield store, port
    server.stop(grace=None).wait()
    store.close()


@pytest.fixture
def client(served):
    return Client("127.0.0.1", served[1])


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    return info.value.code()


def test_version(client):
    version = client.get_version()
    assert (version.major, version.minor) == (2, 12)


def test_repos_create_list_inspect_delete(client, served):
    client.pfs.create_repo(repo=pfs.Repo(name="images"), description="pets")
    client.pfs.create_repo(repo=pfs.Repo.from_uri("labels"))
    assert [r.repo.name for r in client.pfs.list_repo()] == ["images", "labels"]
    info = client.pfs.inspect_repo(repo=pfs.Repo(name="images"))
    assert (info.repo.name, info.repo.project.name, info.description) == ("images", "default", "pets")
    assert client.pfs.repo_exists(pfs.Repo(name="labels"))
    client.pfs.delete_repo(repo=pfs.Repo(name="labels"))
    assert not client.pfs.repo_exists(pfs.Repo(name="labels"))
    assert [r.name for r in served[0].list_repos()] == ["images"]  # the store behind the server saw it all


def test_empty_project_name_means_default(client, served):
    client.pfs.create_repo(repo=pfs.Repo(name="images", project=pfs.Project(name="")))
    assert served[0].inspect_repo("images").project == "default"
    info = client.pfs.inspect_repo(repo=pfs.Repo(name="images", project=pfs.Project(name="")))
    assert info.repo.project.name == "default"
    # a project must exist before repos go in it, as in pachd
    assert code_of(lambda: client.pfs.create_repo(repo=pfs.Repo.from_uri("team/images"))) == grpc.StatusCode.NOT_FOUND
    client.pfs.create_project(project=pfs.Project(name="team"))
    client.pfs.create_repo(repo=pfs.Repo.from_uri("team/images"))
    assert {(r.repo.project.name, r.repo.name) for r in client.pfs.list_repo()} == {
        ("default", "images"), ("team", "images")}
    assert [r.repo.name for r in client.pfs.list_repo(projects=[pfs.Project(name="team")])] == ["images"]


def test_commit_put_list_read(client, tmp_path):
    client.pfs.create_repo(repo=pfs.Repo(name="images"))
    local = tmp_path / "dir"
    (local / "sub").mkdir(parents=True)
    (local / "sub" / "c.txt").write_bytes(b"from a directory")
    with client.pfs.commit(branch=pfs.Branch.from_uri("images@master"), description="first") as commit:
        commit.put_file_from_bytes("/cats/001.png", b"cat-1")
        commit.put_file_from_file(path="/cats/002.png", file=io.BytesIO(b"cat-2" * 1000))
        commit.put_files(source=local, path="/more")
    info = commit.wait()
    assert info.is_set("finished") and info.description == "first"
    root = [(f.file.path, f.file_type) for f in client.pfs.list_file(file=pfs.File.from_uri("images@master:/"))]
    assert root == [("/cats/", pfs.FileType.DIR), ("/more/", pfs.FileType.DIR)]
    cats = list(client.pfs.list_file(file=pfs.File.from_uri("images@master:/cats")))
    assert [(f.file.path, f.size_bytes) for f in cats] == [("/cats/001.png", 5), ("/cats/002.png", 5000)]
    assert client.pfs.pfs_file(pfs.File.from_uri("images@master:/cats/002.png")).read() == b"cat-2" * 1000
    assert client.pfs.pfs_file(pfs.File.from_uri("images@master:/more/sub/c.txt")).read() == b"from a directory"
    walked = [f.file.path for f in client.pfs.walk_file(file=pfs.File.from_uri("images@master:/"))]
    assert walked == ["/", "/cats/", "/cats/001.png", "/cats/002.png", "/more/", "/more/sub/", "/more/sub/c.txt"]
    globbed = [f.file.path for f in client.pfs.glob_file(commit=pfs.Commit.from_uri("images@master"),
                                                         pattern="/cats/*")]
    assert globbed == ["/cats/001.png", "/cats/002.png"]
    assert client.pfs.path_exists(pfs.File.from_uri("images@master:/cats/001.png"))
    assert not client.pfs.path_exists(pfs.File.from_uri("images@master:/cats/003.png"))


def test_list_file_pages_with_a_marker(client):
    client.pfs.create_repo(repo=pfs.Repo(name="big"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("big@master")) as commit:
        for i in range(25):
            commit.put_file_from_bytes(f"/d/{i:03d}", b"x")
    first = [f.file.path for f in client.pfs.list_file(file=pfs.File.from_uri("big@master:/d"), number=10)]
    rest = [f.file.path for f in client.pfs.list_file(
        file=pfs.File.from_uri("big@master:/d"), pagination_marker=pfs.File.from_uri(f"big@master:{first[-1]}"))]
    assert first + rest == [f"/d/{i:03d}" for i in range(25)]


def test_open_commit_is_the_branch_head_until_finished(client):
    client.pfs.create_repo(repo=pfs.Repo(name="images"))
    branch = pfs.Branch.from_uri("images@master")
    opened = client.pfs.start_commit(branch=branch)
    client.pfs.put_file_from_bytes(commit=opened, path="/a", data=b"1")
    assert client.pfs.inspect_branch(branch=branch).head.id == opened.id
    info = client.pfs.inspect_commit(commit=pfs.Commit(repo=pfs.Repo(name="images"), id=opened.id))
    assert not info.is_set("finished")
    # like pachd: a second commit on the branch waits for the open head
    with pytest.raises(grpc.RpcError) as err:
        client.pfs.start_commit(branch=branch)
    assert "has not been finished" in err.value.details()
    # an open commit reads as what it holds so far, as in pachd
    assert client.pfs.pfs_file(pfs.File(commit=opened, path="/a")).read() == b"1"
    client.pfs.finish_commit(commit=opened)
    info = client.pfs.wait_commit(opened)
    assert info.is_set("finished")
    assert client.pfs.pfs_file(pfs.File.from_uri("images@master:/a")).read() == b"1"
    # finished commits take no more writes and cannot be finished twice (pachd's ErrCommitFinished
    # carries no status code: UNKNOWN, with its message)
    for late in (lambda: client.pfs.put_file_from_bytes(commit=opened, path="/b", data=b"2"),
                 lambda: client.pfs.finish_commit(commit=opened)):
        with pytest.raises(grpc.RpcError) as err:
            late()
        assert err.value.code() == grpc.StatusCode.UNKNOWN and "has already finished" in err.value.details()
    # ancestry in commit ids, as pachd parses it
    with client.pfs.commit(branch=branch) as second:
        second.put_file_from_bytes("/b", b"2")
    parent = client.pfs.inspect_commit(commit=pfs.Commit(repo=pfs.Repo(name="images"), id="master^"))
    assert parent.commit.id == opened.id
    history = [c.commit.id for c in client.pfs.list_commit(repo=pfs.Repo(name="images"))]
    assert history == [second.id, opened.id]


def test_append_and_delete(client):
    client.pfs.create_repo(repo=pfs.Repo(name="r"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("r@master")) as c:
        c.put_file_from_bytes("/log", b"one\n")
        c.put_file_from_bytes("/dir/x", b"x")
    with client.pfs.commit(branch=pfs.Branch.from_uri("r@master")) as c:
        c.put_file_from_bytes("/log", b"two\n", append=True)
        c.delete_file(path="/dir/")
    assert client.pfs.pfs_file(pfs.File.from_uri("r@master:/log")).read() == b"one\ntwo\n"
    assert [f.file.path for f in client.pfs.list_file(file=pfs.File.from_uri("r@master:/"))] == ["/log"]
    diff = list(client.pfs.diff_file(new_file=pfs.File.from_uri("r@master:/")))
    files = [d for d in diff if pfs.FileType.DIR not in (d.new_file.file_type, d.old_file.file_type)]
    assert sorted((d.new_file.file.path, d.old_file.file.path) for d in files) == [("", "/dir/x"), ("/log", "/log")]


def test_drop_open_commit(client):
    client.pfs.create_repo(repo=pfs.Repo(name="r"))
    opened = client.pfs.start_commit(branch=pfs.Branch.from_uri("r@master"))
    client.pfs.put_file_from_bytes(commit=opened, path="/a", data=b"1")
    client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=opened.id))
    assert not client.pfs.commit_exists(pfs.Commit(repo=pfs.Repo(name="r"), id=opened.id))


def test_status_codes_for_bad_input(client):
    client.pfs.create_repo(repo=pfs.Repo(name="images"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("images@master")) as c:
        c.put_file_from_bytes("/a.txt", b"a")
    repo = pfs.Repo(name="images")
    cases = {
        "repo exists": (lambda: client.pfs.create_repo(repo=repo), grpc.StatusCode.ALREADY_EXISTS),
        "bad repo name": (lambda: client.pfs.create_repo(repo=pfs.Repo(name="my repo")),
                          grpc.StatusCode.INVALID_ARGUMENT),
        "no such repo": (lambda: client.pfs.inspect_repo(repo=pfs.Repo(name="nope")), grpc.StatusCode.NOT_FOUND),
        "no such branch": (lambda: client.pfs.inspect_branch(branch=pfs.Branch.from_uri("images@nope")),
                           grpc.StatusCode.NOT_FOUND),
        "no such commit": (lambda: client.pfs.inspect_commit(
            commit=pfs.Commit(repo=repo, id="0123456789abcdef0123456789abcdef")), grpc.StatusCode.NOT_FOUND),
        "no such file": (lambda: client.pfs.get_file(file=pfs.File.from_uri("images@master:/nope")),
                         grpc.StatusCode.NOT_FOUND),
        "escaping path": (lambda: client.pfs.put_file_from_bytes(
            commit=client.pfs.start_commit(branch=pfs.Branch.from_uri("images@dev")), path="/../x", data=b"x"),
            grpc.StatusCode.INVALID_ARGUMENT),
        "bad ancestry": (lambda: client.pfs.inspect_commit(commit=pfs.Commit(repo=repo, id="master^x")),
                         grpc.StatusCode.INVALID_ARGUMENT),
        "no such commit set": (lambda: client.pfs.squash_commit_set(
            commit_set=pfs.CommitSet(id="0123456789abcdef0123456789abcdef")), grpc.StatusCode.NOT_FOUND),
    }
    got = {name: code_of(call) for name, (call, _code) in cases.items()}
    assert got == {name: code for name, (_call, code) in cases.items()}


def test_get_file_streams_in_bounded_messages(client):
    client.pfs.create_repo(repo=pfs.Repo(name="r"))
    blob = bytes(range(256)) * 20_000  # 5 MB
    with client.pfs.commit(branch=pfs.Branch.from_uri("r@master")) as c:
        c.put_file_from_bytes("/big", blob)
    sizes = [len(m.value) for m in client.pfs.get_file(file=pfs.File.from_uri("r@master:/big"))]
    assert sum(sizes) == len(blob) and max(sizes) <= 1 << 20 and len(sizes) >= 5
    tail = b"".join(m.value for m in client.pfs.get_file(file=pfs.File.from_uri("r@master:/big"), offset=4_000_000))
    assert tail == blob[4_000_000:]


# -- PachydermBackend: finding and reaching the cluster ---------------------------------------------
def test_backend_reads_the_active_context_of_pach_config(served, tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"v2": {"active_context": "local", "contexts": {
        "local": {"pachd_address": f"grpc://127.0.0.1:{served[1]}"},
        "other": {"pachd_address": "grpc://127.0.0.1:1"},
    }}}))
    monkeypatch.setenv("PACH_CONFIG", str(config))
    backend = PachydermBackend()
    try:
        backend.create_repo("images")
        assert [r.name for r in served[0].list_repos()] == ["images"]
        assert backend.address == f"grpc://127.0.0.1:{served[1]}"
    finally:
        backend.close()


def test_missing_config_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PACH_CONFIG", str(tmp_path / "none.json"))
    with pytest.raises(Unavailable):
        PachydermBackend()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_unreachable_cluster_is_unavailable_within_seconds(kind):
    silent = None
    if kind == "refused":
        target = f"grpc://127.0.0.1:{_free_port()}"
    else:  # accepts TCP connections and never says a word
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        target = f"grpc://127.0.0.1:{silent.getsockname()[1]}"
    backend = PachydermBackend(pachd_address=target, connect_timeout=2.0)
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable):
            backend.list_repos()
    finally:
        backend.close()
        if silent is not None:
            silent.close()
    assert time.monotonic() - started < 5


def test_backend_reads_commits_made_by_other_clients(client, served):
    client.pfs.create_repo(repo=pfs.Repo(name="images"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("images@master"), description="by pachctl") as c:
        c.put_file_from_bytes("/a", b"a")
    backend = PachydermBackend(pachd_address=f"127.0.0.1:{served[1]}")
    try:
        head = backend.inspect_branch("images", "master").head
        # pachd counts no files (n_files 0) and names no branch in replies: the branch is the one asked
        assert (head.id, head.message, head.n_files, head.size_bytes) == (c.id, "by pachctl", 0, 1)
        assert head.branch == "master" and backend.inspect_commit("images", c.id).branch is None
        assert backend.get_file("images", "master", "/a") == b"a"
        with pytest.raises(NotFound):
            backend.inspect_file("images", "master", "/b")
    finally:
        backend.close()


def test_plain_sdk_subscriber_sees_each_backend_commit_once(client, served):
    """A pachyderm_sdk script following labels@master sees every commit PachydermBackend lands there, once,
    and nothing of its staging (private branches, a landing refused by expected_parent)."""
    backend = PachydermBackend(pachd_address=f"127.0.0.1:{served[1]}")
    backend.create_repo("labels")
    seen: list[str] = []
    stream = client.pfs.subscribe_commit(repo=pfs.Repo(name="labels"), branch="master",
                                         state=pfs.CommitState.FINISHED)

    def follow():
        for info in stream:
            seen.append(info.commit.id)
            if len(seen) == 4:
                return

    follower = threading.Thread(target=follow, daemon=True)  # the stream ends with the server if it fails
    follower.start()
    try:
        landed = []
        for n in range(2):
            with backend.commit("labels", "master", message=f"round {n}") as c:
                c.put_file(f"/{n}.json", b"{}")
            landed.append(c.finished.id)
        refused = backend.start_commit("labels", "master")
        backend.put_file(refused, "/late.json", b"{}")
        with pytest.raises(Conflict):
            backend.finish_commit(refused, expected_parent=landed[0])
        backend.abort_commit(refused)
        for n in range(2, 4):
            with backend.commit("labels", "master", message=f"round {n}") as c:
                c.put_file(f"/{n}.json", b"{}")
            landed.append(c.finished.id)
        follower.join(timeout=60)
        assert not follower.is_alive()
        assert seen == landed
    finally:
        backend.close()
