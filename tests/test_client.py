"""The Python API without a Jupyter server (the store opened directly), server discovery
ranking, and the JSON → value type conversions the server client uses."""

from __future__ import annotations

import io
import threading

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyterlab_pachls import connect
from jupyterlab_pachls.client import DirectClient, Table, rank_servers
from jupyterlab_pachls.client.convert import (
    branch_from_json,
    changes_from_json,
    commit_from_json,
    file_from_json,
    repo_from_json,
)
from jupyterlab_pachls.client.http import error_from_response
from jupyterlab_pachls.labeling.labelfile import encode, label_document
from jupyterlab_pachls.pfs import (
    AlreadyExists,
    Commit,
    Conflict,
    InvalidArgument,
    LocalBackend,
    NotFound,
    ParseError,
    PfsError,
    Provenance,
    Unavailable,
)


def label_doc(data_commit: str, path: str, choice: str, annotation_id: int, annotator: int = 1) -> bytes:
    task = {"id": annotation_id, "annotations": [{
        "id": annotation_id, "completed_by": annotator, "lead_time": 1.5,
        "result": [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [choice]}}],
    }]}
    return encode(label_document(repo="images", commit=data_commit, path=path, task=task,
                                 users={1: "ann@example.com", 2: "bob@example.com"}))


@pytest.fixture
def store(tmp_path):
    """images (two commits) and labels (two rounds, each against one images commit)."""
    path = str(tmp_path / "store")
    backend = LocalBackend(path)
    backend.create_repo("images")
    backend.create_repo("labels")
    with backend.commit("images", "master", message="first images", author="ann") as c:
        c.put_file("/cats/001.png", b"png-1")
        c.put_file("/dogs/001.png", b"png-2")
    first = c.finished
    with backend.commit("images", "master", message="more images", author="ann") as c:
        c.put_file("/cats/002.png", b"png-3" * 1000)
    second = c.finished
    with backend.commit("labels", "master", message="round 1", author="ann",
                        provenance=[Provenance("images", first.id)]) as c:
        c.put_file("/cats/001.png.json", label_doc(first.id, "/cats/001.png", "Cat", 1))
        c.put_file("/dogs/001.png.json", label_doc(first.id, "/dogs/001.png", "Dog", 2, annotator=2))
    with backend.commit("labels", "master", message="round 2", author="bob",
                        provenance=[Provenance("images", second.id)]) as c:
        c.put_file("/cats/001.png.json", label_doc(first.id, "/cats/001.png", "Dog", 1))
        c.put_file("/cats/002.png.json", label_doc(second.id, "/cats/002.png", "Cat", 3, annotator=2))
    backend.close()
    return {"path": path, "first": first.id, "second": second.id}


@pytest.fixture
def client(store):
    with connect(store=store["path"]) as c:
        yield c


def test_connect_with_a_store_opens_it_directly(client, store):
    assert isinstance(client, DirectClient) and client.mode == "direct"
    assert store["path"] in client.describe()


def test_repos_branches_log(client, store):
    repos = {r.name: r for r in client.repos()}
    assert set(repos) == {"images", "labels"} and repos["images"].branches == ("master",)
    (branch,) = client.branches("images")
    assert branch.name == "master" and branch.head.id == store["second"]
    log = client.log("images@master")
    assert [c.message for c in log] == ["more images", "first images"]
    assert all(isinstance(c, Commit) for c in log)
    assert [c.message for c in client.log("images", limit=1)] == ["more images"]  # no @ref: master
    with pytest.raises(NotFound, match="nosuch"):
        client.log("nosuch@master")
    with pytest.raises(ParseError, match="position 7"):
        client.log("images@@master")
    assert [c.message for c in client.log(f"images@{store['first']}")] == ["first images"]
    assert [c.id for c in client.log("images@master^1")] == [store["first"]]
    assert [c.message for c in client.log("labels@master^1", limit=1)] == ["round 1"]
    with pytest.raises(InvalidArgument, match="must name a branch"):
        client.rollback(f"images@{store['first']}", store["first"])


def test_ls_open_read_diff(client, store):
    assert [f.path for f in client.ls("images@master:/cats")] == ["/cats/001.png", "/cats/002.png"]
    assert [f.path for f in client.ls(f"images@{store['first']}:/cats")] == ["/cats/001.png"]
    assert [f.path for f in client.ls("images@master:/")] == ["/cats/", "/dogs/"]
    assert client.ls("images@master:/cats", limit=1)[0].path == "/cats/001.png"
    page = client.list_dir("images@master:/cats", limit=1)
    assert page.next == "/cats/001.png"
    with client.open("images@master:/cats/002.png") as f:
        assert isinstance(f, io.BufferedIOBase)
        assert f.read(5) == b"png-3"
        assert f.read() == b"png-3" * 999
    assert client.read("images@master^1:/dogs/001.png") == b"png-2"
    with pytest.raises(InvalidArgument, match="directory"):
        client.open("images@master:/cats")
    with pytest.raises(NotFound):
        client.open("images@master:/cats/003.png")
    (change,) = client.diff("images@master")
    assert (change.path, change.change, change.new.size) == ("/cats/002.png", "added", 5000)
    assert len(client.diff("images@master", f"images@{store['first']}")) == 1
    assert [c.path for c in client.diff(f"images@{store['first']}")] == ["/cats/001.png", "/dogs/001.png"]
    with pytest.raises(InvalidArgument, match="one repo"):
        client.diff("images@master", "labels@master")


def test_create_repo_and_rollback(client, store):
    repo = client.create_repo("text", description="some text")
    assert repo.name == "text" and repo.description == "some text"
    with pytest.raises(AlreadyExists):
        client.create_repo("text")
    branch = client.rollback("images@master", store["first"])
    assert branch.head.id == store["first"]
    assert [c.message for c in client.log("images@master")] == ["first images"]
    (move,) = client.moves("images@master")
    assert (move.old_head, move.new_head, move.reason) == (store["second"], store["first"], "rollback")
    assert move.author == client.author
    with pytest.raises(Conflict):
        client.rollback("images@master", store["second"], expected_head=store["second"])


def test_mounts_need_a_server(client):
    for call in (client.mounts, lambda: client.mount("labels@master", rw=True), lambda: client.changes("x"),
                 lambda: client.commit("x", "m"), lambda: client.discard("x"), lambda: client.unmount("x")):
        with pytest.raises(Unavailable, match="mounts need a running Jupyter server"):
            call()


def test_labels_rows_at_a_commit_and_by_data_version(client, store):
    rows = client.labels("labels@master")
    assert isinstance(rows, Table)
    assert [(r["data_path"], r["annotator"], r["labels"]) for r in rows] == [
        ("/cats/001.png", "ann@example.com", ["Dog"]),
        ("/cats/002.png", "bob@example.com", ["Cat"]),
        ("/dogs/001.png", "bob@example.com", ["Dog"]),
    ]
    head = client.inspect_commit("labels@master").id
    assert {r["label_commit"] for r in rows} == {head}
    # round 1, at an exact earlier label commit
    round1 = client.labels("labels@master^1")
    assert [(r["data_path"], r["labels"]) for r in round1] == [("/cats/001.png", ["Cat"]), ("/dogs/001.png", ["Dog"])]
    # labels made on the first images commit (or earlier) only
    on_first = client.labels("labels@master", data=f"images@{store['first']}")
    assert [r["data_path"] for r in on_first] == ["/cats/001.png", "/dogs/001.png"]
    assert len(client.labels("labels@master", data="images@master")) == 3
    assert client.labels("labels@master", data="text") == []
    frame = rows.to_frame()
    assert list(frame["data_commit"]) == [store["first"], store["second"], store["first"]]


def test_blame_and_label_diff(client, store):
    entries = client.blame("labels@master:/cats/001.png")
    assert [(e.message, e.change, e.labels) for e in entries] == [
        ("round 2", "modified", ("Dog",)), ("round 1", "added", ("Cat",))]
    assert entries[0].data_commit == store["first"]
    with pytest.raises(InvalidArgument, match="must name a file"):
        client.blame("labels@master")
    changes = client.label_diff("labels@master")
    assert sorted((c.path, c.change, c.before, c.after) for c in changes) == [
        ("/cats/001.png", "modified", ("Cat",), ("Dog",)),
        ("/cats/002.png", "added", (), ("Cat",)),
    ]


def test_connect_without_any_server_opens_the_default_store(tmp_path, monkeypatch, store):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PACHLS_STORE", store["path"])
    monkeypatch.delenv("PACHLS_SERVER_URL", raising=False)
    monkeypatch.delenv("PACHD_ADDRESS", raising=False)
    with connect() as c:
        assert c.mode == "direct" and [r.name for r in c.repos()] == ["images", "labels"]
    with pytest.raises(Unavailable, match="no running Jupyter server"):
        connect(server=True)


def test_connect_to_an_unreachable_url_says_so(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unavailable, match=f"cannot reach the Jupyter server at http://127.0.0.1:{port}/"):
        connect(f"http://127.0.0.1:{port}", token="x")


def test_rank_servers_prefers_the_kernels_server_then_the_deepest_root(tmp_path):
    deep = tmp_path / "project" / "sub"
    deep.mkdir(parents=True)
    servers = [
        {"url": "http://127.0.0.1:1/", "pid": 11, "root_dir": "/elsewhere"},
        {"url": "http://127.0.0.1:2/", "pid": 12, "root_dir": str(tmp_path)},
        {"url": "http://127.0.0.1:3/", "pid": 13, "root_dir": str(tmp_path / "project")},
        {"url": "http+unix://%2Ftmp%2Fsock/", "pid": 14, "root_dir": str(tmp_path)},
    ]
    assert [s["pid"] for s in rank_servers(servers, str(deep))] == [13, 12, 11]
    assert [s["pid"] for s in rank_servers(servers, str(deep), parent_pid=11)] == [11, 13, 12]
    assert [s["pid"] for s in rank_servers(servers, "/")] == [11, 12, 13]


def test_json_round_trips_to_value_types(store):
    backend = LocalBackend(store["path"])
    try:
        commit = backend.inspect_commit("labels", "master")
        assert commit_from_json(commit.to_json()) == commit
        branch = backend.inspect_branch("labels", "master")
        assert branch_from_json(branch.to_json()) == branch
        info = backend.inspect_file("images", "master", "/cats/001.png")
        assert file_from_json(info.to_json()) == info
        repo = backend.inspect_repo("images")
        as_served = dict(repo.to_json(), branches=[{"repo": "images", "name": "master", "head": None}])
        assert repo_from_json(as_served).branches == ("master",)
    finally:
        backend.close()
    pending = changes_from_json({"name": "labels", "base": None, "changes": [
        {"path": "/a.json", "change": "added", "size": 3, "old_size": None}], "unsupported": [],
        "counts": {"added": 1}})
    assert len(pending) == 1 and pending.changes[0].path == "/a.json"


def test_error_answers_become_typed_errors():
    exc = error_from_response(404, b'{"error": "not_found", "message": "repo x not found", "details": {"repo": "x"}}')
    assert isinstance(exc, NotFound) and exc.message == "repo x not found" and exc.details == {"repo": "x"}
    exc = error_from_response(400, b'{"error": "parse_error", "message": "cannot parse", "details": {}}')
    assert isinstance(exc, ParseError)
    exc = error_from_response(409, b'{"error": "conflict", "message": "paths changed", "details": {"paths": ["/a"]}}')
    assert isinstance(exc, Conflict) and exc.details["paths"] == ["/a"]
    exc = error_from_response(500, b"<html>oops</html>", "http://h/")
    assert type(exc) is PfsError and "HTTP 500" in exc.message
    exc = error_from_response(403, b'{"error": "forbidden", "message": "Forbidden"}', "http://h/")
    assert isinstance(exc, Unavailable) and "check its token" in exc.message


# -- magics in a real IPython shell over a direct client ---------------------------------------
def test_magics_return_values_and_one_line_errors(shell, store, capsys):
    frame = shell.run_line_magic("pachls", "labels labels@master --data images@master")
    assert list(frame["annotator"]) == ["ann@example.com", "bob@example.com", "bob@example.com"]
    log = shell.run_line_magic("pachls", "log images@master -n 1")
    assert list(log["message"]) == ["more images"]
    assert shell.run_line_magic("pachls", "log nosuch@master") is None
    assert capsys.readouterr().err == "pachls: repo nosuch not found\n"
    shell.run_line_magic("pachls", "ls images@@master:/")
    err = capsys.readouterr().err
    assert err.startswith("pachls: cannot parse 'images@@master:/' at position 7") and err.count("\n") == 1
    shell.run_line_magic("pachls", "mounts")
    assert capsys.readouterr().err.startswith("pachls: mounts need a running Jupyter server")
    shell.run_line_magic("pachls", "status")
    assert "opened directly" in capsys.readouterr().out
    shell.run_line_magic("pachls", f"rollback images@master {store['first']}")
    assert capsys.readouterr().out.strip() == f"images@master now points at {store['first']} (was {store['second']})"
    shell.run_line_magic("pachls", "create-repo text")
    assert capsys.readouterr().out.strip() == "Created repo 'text'"
    diff = shell.run_line_magic("pachls", "diff labels@master^1 labels@master --labels")
    assert sorted(diff["path"]) == ["/cats/001.png", "/cats/002.png"]


def test_cell_magic_only_commits(shell, capsys):
    shell.run_cell_magic("pachls", "log images@master", "x = 1")
    assert "only runs 'commit NAME -m MESSAGE'" in capsys.readouterr().err
    assert "x" not in shell.user_ns


def test_load_ext_registers_the_magic():
    ip = InteractiveShell.instance()
    try:
        ip.run_line_magic("load_ext", "jupyterlab_pachls")
        assert "pachls" in ip.magics_manager.magics["line"]
        assert "pachls" in ip.magics_manager.magics["cell"]
    finally:
        InteractiveShell.clear_instance()


# -- following a branch ---------------------------------------------------------------------------
@pytest.fixture(params=["local", "pachyderm"])
def direct(request, tmp_path):
    """A direct client of the embedded store, or of the Pachyderm-API server over real gRPC."""
    server = served = None
    if request.param == "local":
        opened = connect(store=str(tmp_path / "store"))
    else:
        from jupyterlab_pachls.pfs.server import make_server

        served = LocalBackend(tmp_path / "served-store")
        server, port = make_server(served, "127.0.0.1:0")
        opened = connect(pachd_address=f"grpc://127.0.0.1:{port}")
    opened.backend.create_repo("labels")
    yield opened
    opened.close()
    if server is not None:
        server.stop(grace=None).wait()
        served.close()


def label_round(client, n: int) -> Commit:
    with client.backend.commit("labels", "master", message=f"round {n}", author="ann") as c:
        c.put_file(f"/round-{n}.json", b"{}")
    return c.finished


def test_subscribe_yields_each_new_commit_once(direct):
    before = label_round(direct, 0)
    rounds = direct.subscribe("labels@master", timeout=60)  # from the head now
    one, two = label_round(direct, 1), label_round(direct, 2)
    assert [next(rounds).id, next(rounds).id] == [one.id, two.id]
    direct.rollback("labels@master", before.id)  # a rollback is no new commit
    three = label_round(direct, 3)
    assert next(rounds).id == three.id
    landing = threading.Thread(target=label_round, args=(direct, 4))
    landing.start()  # the subscriber waits for it
    four = next(rounds)
    landing.join()
    assert (four.message, four.parent, four.branch) == ("round 4", three.id, "master")
    rounds.close()
    # from a given commit: what landed on the branch after it comes at once, then nothing more
    assert [c.message for c in direct.subscribe("labels@master", after=before.id, timeout=0)] == \
        ["round 3", "round 4"]
    assert [c.id for c in direct.subscribe("labels@master", after="master^1", timeout=0)] == [four.id]
    assert list(direct.subscribe("labels@master", timeout=0)) == []


def test_wait_and_stop(direct):
    first = label_round(direct, 1)
    assert direct.wait("labels@master", timeout=0) is None
    assert direct.wait("labels@master", after=f"labels@{first.id}", timeout=0) is None
    second = label_round(direct, 2)
    assert direct.wait("labels@master", after=first.id, timeout=0).id == second.id
    stop = threading.Event()
    stop.set()
    assert list(direct.subscribe("labels@master", stop=stop)) == []
    # a branch that does not exist yet: its first commit is new
    rounds = direct.subscribe("labels@round-2", timeout=60)
    with direct.backend.commit("labels", "round-2") as c:
        c.put_file("/a.json", b"{}")
    assert next(rounds).id == c.finished.id
    rounds.close()


def test_subscribe_refuses_bad_addresses(direct):
    label_round(direct, 1)
    head = direct.inspect_commit("labels@master").id
    with pytest.raises(InvalidArgument, match="must name a branch"):
        direct.subscribe(f"labels@{head}")
    with pytest.raises(NotFound):
        direct.subscribe("nosuch@master")
    direct.create_repo("images")
    with pytest.raises(InvalidArgument, match="not of labels"):
        direct.subscribe("labels@master", after=f"images@{head}")
    with pytest.raises(NotFound):
        direct.subscribe("labels@master", after="0123456789abcdef0123456789abcdef")


def test_wait_magic(shell, capsys):
    second_round, first_round = shell.run_line_magic("pachls", "log labels@master")["commit"]
    assert shell.run_line_magic("pachls", f"wait labels@master --after {second_round} --timeout 0") is None
    assert capsys.readouterr().err == "No new commit on labels@master within 0 s\n"
    commit = shell.run_line_magic("pachls", f"wait labels@master --after {first_round} --timeout 5")
    assert commit.message == "round 2" and commit.parent == first_round
    assert capsys.readouterr().out == f"New commit on labels@master: {commit.id} ('round 2' by bob)\n"
    assert shell.run_line_magic("pachls", "wait labels@master --timeout -1") is None
    assert "--timeout must be a number of seconds" in capsys.readouterr().err
