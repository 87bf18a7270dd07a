"""Import into ONE commit: the REST route (tar stream, multipart, a folder under the Jupyter root),
progress and cancel, both Python clients' ``put`` and ``%pachls put``.

One real Jupyter server (a subprocess, shared by the module) over a throwaway store; uploads go
over real sockets, so a client that disconnects midway is a real disconnect. Every JSON answer is
checked against ``openapi.yaml``. After each refused or cut-off import the branch head must be
where it was and the store must hold no open commit: nothing half-landed.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import time
import urllib.parse
import uuid

import pytest

from jupyterlab_pachls.client import DirectClient
from jupyterlab_pachls.client.http import ServerClient
from jupyterlab_pachls.magics import PachlsMagics
from jupyterlab_pachls.pfs import InvalidArgument, InvalidPath, LocalBackend, NotFound
from jupyterlab_pachls.pfs.imports import StreamPipe, local_files, tar_items
from openapi_check import checker
from serverproc import JupyterServer

IDENTITY = {"PachlsConfig.user_name": "Ann Importer", "PachlsConfig.user_email": "ann@example.com"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("import")
    root = base / "root"
    (root / "data" / "cats").mkdir(parents=True)
    (root / "data" / "cats" / "001.png").write_bytes(b"cat-1")
    (root / "data" / "cats" / "002.png").write_bytes(b"cat-2" * 1000)
    (root / "data" / "notes.txt").write_text("notes")
    (base / "secret.txt").write_text("outside the root")
    os.symlink(base / "secret.txt", root / "data" / "leak.txt")
    with JupyterServer(root, store=base / "store", no_fuse=True, config=IDENTITY) as running:
        status, _ = running.api("POST", "repos", {"name": "images"})
        assert status == 201
        yield running


def api(server: JupyterServer, method: str, path: str, body=None, *, raw: bytes | None = None,
        content_type: str | None = None) -> tuple[int, dict | None]:
    headers = {"Content-Type": content_type} if content_type else None
    status, data, answered = server.request(method, f"pachls/api/{path}", body, raw=raw, headers=headers)
    return status, checker().check(method, f"/pachls/api/{path}", status, answered.get("Content-Type", ""), data)


def tar_of(files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return out.getvalue()


def members(files: dict[str, bytes]) -> bytes:
    """Tar members without the end marker: an upload that has not ended yet."""
    out = bytearray()
    for name, data in files.items():
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out += info.tobuf(tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % 512)
    return bytes(out)


def head(server: JupyterServer, branch: str = "master") -> str | None:
    status, body = server.api("GET", f"repos/images/branches/{branch}")
    return body["head"]["id"] if status == 200 and body.get("head") else None


def files_at(server: JupyterServer, ref: str, path: str = "/") -> list[str]:
    status, body = server.api("GET", f"repos/images/commits/{ref}/files?path={urllib.parse.quote(path)}")
    assert status == 200, body
    return [f["path"] for f in body["items"]]


def assert_nothing_landed(server: JupyterServer, before: str | None) -> None:
    assert head(server) == before
    # no open commit left behind: the next import's parent is the same head
    status, body = api(server, "POST", "repos/images/branches/master/import?dest=/probe",
                       raw=tar_of({f"{uuid.uuid4().hex}.txt": b"x"}), content_type="application/x-tar")
    assert status == 201, body
    assert body["commit"]["parent"] == before


def test_a_tar_lands_as_one_commit_below_dest(server):
    before = head(server)
    big = os.urandom(3 << 20)  # bigger than READ_WHOLE: streamed as a file object
    status, body = api(server, "POST", "repos/images/branches/master/import?dest=/raw&message=first%20batch",
                       raw=tar_of({"cats/a.png": b"a", "./cats/b.png": b"bb", "big.bin": big}),
                       content_type="application/x-tar")
    assert status == 201, body
    assert body["files"] == 3 and body["bytes"] == 3 + len(big)
    commit = body["commit"]
    assert commit["parent"] == before and commit["message"] == "first batch"
    assert commit["author"] == "Ann Importer <ann@example.com>"
    assert files_at(server, commit["id"], "/raw/cats") == ["/raw/cats/a.png", "/raw/cats/b.png"]
    status, data, _ = server.request("GET", f"pachls/api/repos/images/commits/{commit['id']}/file?path=/raw/big.bin")
    assert status == 200 and data == big


@pytest.mark.parametrize("member, code", [
    ("../escape.txt", "invalid_path"),
    ("a/../../b.txt", "invalid_path"),
    ("link", "invalid_argument"),
    ("truncated", "invalid_argument"),
])
def test_a_bad_tar_commits_nothing(server, member, code):
    before = head(server)
    if member == "link":
        link = tarfile.TarInfo("cats/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        raw = tar_of({"cats/ok.png": b"ok"}, [link])
    elif member == "truncated":
        raw = tar_of({"cats/ok.png": b"ok", "cats/cut.png": os.urandom(100_000)})[:60_000]
    else:
        raw = tar_of({"cats/ok.png": b"ok", member: b"bad"})
    status, body = api(server, "POST", "repos/images/branches/master/import", raw=raw,
                       content_type="application/x-tar")
    assert status == 400 and body["error"] == code, body
    assert_nothing_landed(server, before)


def test_bad_requests_are_refused_before_reading(server):
    status, body = api(server, "POST", "repos/images/branches/master/import", raw=b"x", content_type="text/plain")
    assert status == 400 and body["error"] == "invalid_argument" and "Content-Type" in body["message"]
    status, body = api(server, "POST", "repos/images/branches/master/import?dest=relative",
                       raw=tar_of({"a": b"a"}), content_type="application/x-tar")
    assert status == 400 and body["error"] == "invalid_path"
    status, body = api(server, "POST", "repos/images/branches/bad%20name/import",
                       raw=tar_of({"a": b"a"}), content_type="application/x-tar")
    assert status == 400 and body["error"] == "invalid_name"
    status, body = api(server, "POST", "repos/nope/branches/master/import",
                       raw=tar_of({"a": b"a"}), content_type="application/x-tar")
    assert status == 404 and body["error"] == "not_found"
    status, body = api(server, "POST", "repos/images/branches/master/import", raw=tar_of({}),
                       content_type="application/x-tar")
    assert status == 400 and "nothing to import" in body["message"]


def test_without_a_token_nothing_is_read(server):
    before = head(server)
    request = f"POST /pachls/api/repos/images/branches/master/import HTTP/1.1\r\nHost: 127.0.0.1\r\n" \
              f"Content-Type: application/x-tar\r\nContent-Length: 10240\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(request.encode() + tar_of({"a.txt": b"a"}))
        answer = conn.recv(4096).decode(errors="replace")
    assert answer.split(" ")[1] == "403", answer
    assert head(server) == before


def test_a_multipart_upload_keeps_relative_paths(server):
    boundary = "pachls" + uuid.uuid4().hex
    parts = []
    for name, data in [("dropped/cats/x.png", b"x" * 10), ("dropped/readme.md", b"# hi")]:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nignored\r\n'.encode())
    raw = b"".join(parts) + f"--{boundary}--\r\n".encode()
    status, body = api(server, "POST", "repos/images/branches/master/import?dest=/up", raw=raw,
                       content_type=f"multipart/form-data; boundary={boundary}")
    assert status == 201, body
    assert body["files"] == 2
    assert files_at(server, body["commit"]["id"], "/up/dropped") == ["/up/dropped/cats/", "/up/dropped/readme.md"]
    before = head(server)
    status, body = api(server, "POST", "repos/images/branches/master/import", raw=raw[:-40],
                       content_type=f"multipart/form-data; boundary={boundary}")
    assert status == 400 and "closing boundary" in body["message"]
    assert_nothing_landed(server, before)


def test_a_folder_under_the_jupyter_root_is_read_by_the_server(server):
    status, body = api(server, "POST", "repos/images/branches/folder/import?dest=/in",
                       {"source": ["data/cats", "data/notes.txt"]})
    assert status == 201, body
    assert body["files"] == 3 and body["commit"]["branch"] == "folder"
    assert files_at(server, "folder", "/in/cats") == ["/in/cats/001.png", "/in/cats/002.png"]
    status, body = api(server, "POST", "repos/images/branches/folder/import", {"source": "data/c*s"})
    assert status == 201 and body["files"] == 2


@pytest.mark.parametrize("source, code", [
    ("../secret.txt", "invalid_path"),
    ("/etc", "invalid_path"),
    ("data", "invalid_path"),  # holds data/leak.txt, a symlink out of the root
    ("data/missing", "not_found"),
])
def test_a_folder_import_stays_inside_the_root(server, source, code):
    before = head(server, "folder")
    status, body = api(server, "POST", "repos/images/branches/folder/import", {"source": source})
    assert status in (400, 404) and body["error"] == code, body
    assert head(server, "folder") == before


def open_upload(server: JupyterServer, path: str) -> socket.socket:
    """A chunked tar upload whose body is sent by hand, so a test can stop midway."""
    conn = socket.create_connection(("127.0.0.1", server.port))
    conn.sendall(f"POST /pachls/api/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {server.token}\r\n"
                 "Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    return conn


def send_chunk(conn: socket.socket, data: bytes) -> None:
    conn.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_client_that_disconnects_midway_leaves_no_commit(server):
    before = head(server)
    conn = open_upload(server, "repos/images/branches/master/import?id=cut")
    send_chunk(conn, tar_of({f"f{i}.txt": b"x" * 100 for i in range(50)}))  # end marker, not the body's end
    # the tar is read in blocks: the last few members wait for bytes that never come
    wait_for(lambda: (api(server, "GET", "imports/cut")[1] or {}).get("files", 0) >= 40)
    conn.close()
    wait_for(lambda: api(server, "GET", "imports/cut")[0] == 404)
    assert_nothing_landed(server, before)


def test_progress_then_cancel(server):
    before = head(server)
    conn = open_upload(server, "repos/images/branches/master/import?id=slow")
    try:
        send_chunk(conn, members({f"p{i}.txt": b"y" * 1000 for i in range(40)}))
        progress = wait_for(lambda: next((i for i in api(server, "GET", "imports")[1]["imports"]
                                          if i["id"] == "slow" and i["files"] >= 20), None))
        assert progress["state"] == "running" and progress["repo"] == "images"
        assert progress["bytes"] == progress["files"] * 1000 and progress["bytes_per_second"] > 0
        status, body = api(server, "POST", "repos/images/branches/master/import?id=slow",
                           raw=tar_of({"a": b"a"}), content_type="application/x-tar")
        assert status == 409 and body["error"] == "already_exists"  # the running one is untouched
        assert api(server, "DELETE", "imports/slow") == (204, None)
        conn.sendall(b"0\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = conn.recv(65536)
            if not piece:
                break
            answer += piece
    finally:
        conn.close()
    assert answer.startswith(b"HTTP/1.1 409"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "cancelled"
    assert_nothing_landed(server, before)
    assert api(server, "GET", "imports/nope")[1]["error"] == "not_found"
    assert api(server, "GET", "imports/bad%20id")[1]["error"] == "invalid_argument"


def server_rss(server: JupyterServer) -> int:
    with open(f"/proc/{server.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) * 1024


def test_a_big_upload_is_streamed_not_held(server):
    """256 MiB through a 8 MiB pipe: the server's memory grows far less than the upload."""
    size = 256 << 20
    block = os.urandom(1 << 20)
    conn = open_upload(server, "repos/images/branches/bigfile/import")
    rss_before = server_rss(server)
    peak = rss_before
    try:
        info = tarfile.TarInfo("huge.bin")
        info.size = size
        send_chunk(conn, info.tobuf(tarfile.PAX_FORMAT))
        for i in range(size // len(block)):
            send_chunk(conn, block)
            if i % 16 == 0:
                peak = max(peak, server_rss(server))
        send_chunk(conn, b"\0" * 1024)
        conn.sendall(b"0\r\n\r\n")
        answer = conn.recv(65536)
    finally:
        conn.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert peak - rss_before < 64 << 20, f"server memory grew {(peak - rss_before) >> 20} MiB for a 256 MiB upload"
    status, body = server.api("GET", "repos/images/commits/bigfile/files?path=/")
    assert body["items"][0]["size"] == size


# -- the Python clients and the magic ---------------------------------------------------------------
@pytest.fixture
def local_tree(tmp_path):
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    (tmp_path / "photos" / "cats" / "1.png").write_bytes(b"one")
    (tmp_path / "photos" / "2.png").write_bytes(b"two" * 500_000)  # 1.5 MB: streamed in pieces
    (tmp_path / "label me.txt").write_text("spaces and ünïcode")
    return tmp_path


@pytest.fixture(params=["server", "direct", "pachyderm"])
def client(request, server, tmp_path):
    if request.param == "server":
        with ServerClient(server.url, server.token) as made:
            yield made, "images"
    elif request.param == "pachyderm":  # a direct client of a cluster: real gRPC, the real pachyderm_sdk
        from jupyterlab_pachls.pfs.server import make_server

        served = LocalBackend(str(tmp_path / "served-store"))
        served.create_repo("images")
        grpc_server, port = make_server(served, "127.0.0.1:0")
        try:
            with DirectClient({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"},
                              author="ann") as made:
                yield made, "images"
        finally:
            grpc_server.stop(grace=None).wait()
            served.close()
    else:
        backend = LocalBackend(str(tmp_path / "direct-store"))
        backend.create_repo("images")
        backend.close()
        with DirectClient({"kind": "local", "path": str(tmp_path / "direct-store")}, author="ann") as made:
            yield made, "images"


def test_put_files_dirs_and_globs_into_one_commit(client, local_tree):
    made, repo = client
    seen = []
    commit = made.put(f"{repo}@put-{made.mode}:/batch", local_tree / "photos", str(local_tree / "*.txt"),
                      message="photos", progress=False)
    assert commit.branch == f"put-{made.mode}" and commit.message == "photos"
    paths = sorted(f.path for f in made.ls(f"{repo}@{commit.id}:/batch", limit=None))
    assert paths == ["/batch/label me.txt", "/batch/photos/"]
    assert made.read(f"{repo}@{commit.id}:/batch/photos/2.png") == b"two" * 500_000
    assert made.read(f"{repo}@{commit.id}:/batch/photos/cats/1.png") == b"one"
    seen.append(commit.id)
    again = made.put(f"{repo}@put-{made.mode}", str(local_tree / "photos" / "cats" / "*"), progress=False)
    assert again.parent == commit.id and again.message == "Import 1 files"
    assert made.read(f"{repo}@{again.id}:/1.png") == b"one"


def test_put_refuses_before_sending_anything(client, local_tree):
    made, repo = client
    before = [(b.name, b.head) for b in made.branches(repo)]
    with pytest.raises(NotFound):
        made.put(f"{repo}@master", local_tree / "photos", local_tree / "missing", progress=False)
    with pytest.raises(NotFound):
        made.put(f"{repo}@master", str(local_tree / "nothing-*.png"), progress=False)
    with pytest.raises(InvalidArgument):
        made.put(f"{repo}@master^1", local_tree / "photos", progress=False)
    with pytest.raises(NotFound):
        made.put("no-such-repo@master", local_tree / "photos", progress=False)
    assert [(b.name, b.head) for b in made.branches(repo)] == before


def test_percent_pachls_put_shows_progress_and_commits(server, local_tree, capsys):
    with ServerClient(server.url, server.token) as made:
        magics = PachlsMagics(shell=None, client_factory=lambda: made)
        commit = magics.pachls(f"put images@magic:/m '{local_tree / 'photos'}' -m 'from a notebook'")
        out = capsys.readouterr()
        assert commit.message == "from a notebook" and commit.branch == "magic"
        assert f"to images@magic: {commit.id}" in out.out
        assert "2/2 files" in out.err and "MB" in out.err  # tqdm's bar: files and bytes
        assert sorted(f.path for f in made.ls(f"images@{commit.id}:/m/photos")) == ["/m/photos/2.png",
                                                                                  "/m/photos/cats/"]
        assert magics.pachls("put images@magic /does/not/exist") is None
        assert "does not exist" in capsys.readouterr().err


# -- the pieces, without a server ----------------------------------------------------------------------
def test_local_files_confined_to_a_root(tmp_path):
    (tmp_path / "root" / "d").mkdir(parents=True)
    (tmp_path / "root" / "d" / "a.txt").write_text("a")
    os.symlink(tmp_path / "root" / "d", tmp_path / "root" / "d" / "loop")  # a symlinked dir: not descended
    found = list(local_files(["d"], "/x", root=str(tmp_path / "root")))
    assert [(f.path, f.size) for f in found] == [("/x/d/a.txt", 1)]
    with pytest.raises(InvalidPath):
        list(local_files(["d/../../"], "/", root=str(tmp_path / "root")))


def test_tar_items_refuse_names_that_leave_dest():
    with pytest.raises(InvalidPath):
        list(tar_items(io.BytesIO(tar_of({"ok.txt": b"1", "../../x": b"2"})), "/dest"))
    assert [p for p, _ in tar_items(io.BytesIO(tar_of({"/abs/x": b"1"})), "/dest")] == ["/dest/abs/x"]


def test_stream_pipe_bounds_what_it_buffers():
    pipe = StreamPipe(limit=100)
    pipe.feed(b"x" * 60)
    assert not pipe.full()
    pipe.feed(b"x" * 60)
    assert pipe.full()
    woken = []
    pipe.when_drained(lambda: woken.append(True))
    assert pipe.read(30) == b"x" * 30 and not woken  # 90 left: above half
    assert len(pipe.read(50)) == 50 and woken == [True]
    pipe.finish()
    assert pipe.read() == b"x" * 40 and pipe.read() == b""
