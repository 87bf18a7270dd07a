"""Downloads: ``GET .../commits/{ref}/archive`` (tar and zip of a directory, a file or the whole repo at a
commit), ``Client.get`` through the server and with the store opened directly, ``%pachls get``, and
``Backend.read_tree`` (the bulk read under them) on the embedded store."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import zipfile

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyterlab_pachls import connect
from jupyterlab_pachls.client import ServerClient
from jupyterlab_pachls.client.base import confined
from jupyterlab_pachls.magics import PachlsMagics
from jupyterlab_pachls.pfs import AlreadyExists, Backend, InvalidPath, LocalBackend, NotFound, Unavailable
from jupyterlab_pachls.pfs.archive import archive_entries, plan_archive, stream_archive, tar_header

from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

BIG = os.urandom(3 << 20)  # several stream pieces: a file larger than one chunk
FILES = {
    "/cats/001.png": b"png-1",
    "/cats/kittens/002.png": BIG,
    "/cats-and-dogs.txt": b"sorts between /cats and /cats/ in path order",
    "/dogs/001.png": b"",
    "/ünï ça.txt": b"names kept exactly",
}


def fill(backend) -> dict:
    backend.create_repo("images")
    with backend.commit("images", "master", message="first") as c:
        c.put_files(list(FILES.items()))
    first = c.finished.id
    with backend.commit("images", "master", message="second") as c:
        c.put_file("/cats/001.png", b"png-1 changed")
        c.delete_file("/dogs")
    return {"first": first, "second": c.finished.id}


@pytest.fixture
def store(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    made = fill(backend)
    yield backend, made
    backend.close()


def tar_members(data: bytes) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        return {m.name + ("/" if m.isdir() else ""): (archive.extractfile(m).read() if m.isfile() else None)
                for m in archive.getmembers()}


def zip_members(data: bytes) -> dict[str, bytes | None]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {i.filename: (None if i.is_dir() else archive.read(i)) for i in archive.infolist()}


# -- the bulk read and the archive, no server ----------------------------------------------------
def test_read_tree_fast_path_equals_the_generic_one(store):
    """LocalBackend's one-pass read gives what the interface's walk-and-read gives, in the same order."""
    backend, made = store
    for path in ("/", "/cats", "/cats/001.png"):
        for ref in (made["first"], "master"):
            fast = [(i.path, i.type, i.size, None if c is None else b"".join(c))
                    for i, c in backend.read_tree("images", ref, path)]
            generic = [(i.path, i.type, i.size, None if c is None else b"".join(c))
                       for i, c in Backend.read_tree(backend, "images", ref, path)]
            assert fast == generic, (path, ref)
    paths = [i.path for i, _ in backend.read_tree("images", made["first"], "/")]
    assert paths == ["/cats-and-dogs.txt", "/cats/", "/cats/001.png", "/cats/kittens/", "/cats/kittens/002.png",
                     "/dogs/", "/dogs/001.png", "/ünï ça.txt"]
    with pytest.raises(NotFound):
        list(backend.read_tree("images", "master", "/dogs"))


def test_archive_of_a_commit_is_the_same_bytes_each_time(store):
    backend, made = store
    archive = plan_archive(backend, "images", made["first"], "/cats")
    once = b"".join(stream_archive("tar", archive_entries(backend, archive), 1e9))
    assert once == b"".join(stream_archive("tar", archive_entries(backend, archive), 1e9))
    assert tar_members(once) == {"cats/": None, "cats/001.png": b"png-1", "cats/kittens/": None,
                                 "cats/kittens/002.png": BIG}


@pytest.mark.parametrize("name,size,is_dir", [
    ("a/b.png", 2048, False), ("cats/", 0, True), ("/", 0, True), ("x" * 100, 5, False), ("x" * 101, 1, False),
    ("ünï ça.txt", 1, False), ("big", 8 ** 11, False), ("empty", 0, False)])
def test_tar_headers_are_what_tarfile_writes(name, size, is_dir):
    """The filled-in template of a short ASCII name, and tarfile's own pax header otherwise, byte for byte."""
    expected = tarfile.TarInfo(name)
    expected.mtime = 1_700_000_000
    if is_dir:
        expected.type, expected.mode = tarfile.DIRTYPE, 0o755
    else:
        expected.size, expected.mode = size, 0o644
    assert tar_header(name, size, 1_700_000_000, is_dir) == expected.tobuf(tarfile.PAX_FORMAT, "utf-8",
                                                                           "surrogateescape")


def test_a_blob_that_does_not_hold_its_size_stops_the_archive(store):
    """A damaged store (a blob cut short): the stream fails rather than shift every later entry."""
    backend, made = store
    info = backend.inspect_file("images", made["first"], "/cats/kittens/002.png")
    with open(backend.blob_path(info.hash), "r+b") as blob:
        blob.truncate(1000)
    archive = plan_archive(backend, "images", made["first"], "/")
    with pytest.raises(Exception, match="holds 1000 bytes"):
        b"".join(stream_archive("tar", archive_entries(backend, archive), 1e9))


def test_confined_refuses_names_leaving_the_target(tmp_path):
    (tmp_path / "out").mkdir()
    os.symlink("/", tmp_path / "out" / "escape")
    for name in ("../x", "/etc/passwd", "a/../../x", "escape/tmp/x", "", "a//b"):
        with pytest.raises(InvalidPath):
            confined(tmp_path / "out", name)
    assert confined(tmp_path / "out", "a/b.png") == tmp_path / "out" / "a" / "b.png"


# -- the REST route -------------------------------------------------------------------------------------
async def test_archive_route_tar_and_zip(raw_api, api, pachls_state):
    made = await asyncio.to_thread(fill, pachls_state.backend)
    response = await raw_api("GET", "repos/images/commits/master/archive?path=/cats")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/x-tar"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="cats.tar"')
    assert response.headers["X-Pachls-Commit"] == made["second"]
    assert tar_members(response.body) == {"cats/": None, "cats/001.png": b"png-1 changed", "cats/kittens/": None,
                                          "cats/kittens/002.png": BIG}
    # the whole repo at an older commit, as zip: entries in one directory named after repo and commit
    response = await raw_api("GET", f"repos/images/commits/{made['first']}/archive?format=zip")
    assert response.code == 200 and response.headers["Content-Type"] == "application/zip"
    top = f"images-{made['first'][:12]}/"
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="{top[:-1]}.zip"')
    members = zip_members(response.body)
    assert members[top] is None and members[top + "dogs/001.png"] == b""
    assert {name[len(top):]: body for name, body in members.items() if body is not None} == \
        {path[1:]: body for path, body in FILES.items()}
    # one file
    response = await raw_api("GET", "repos/images/commits/master^1/archive?path=/cats/001.png")
    assert tar_members(response.body) == {"001.png": b"png-1"}
    for params, code, error in [
        ({"path": "/dogs"}, 404, "not_found"),  # deleted in the second commit
        ({"path": "/../etc"}, 400, "invalid_path"),
        ({"format": "rar"}, 400, "invalid_argument"),
        ({"format": ""}, 400, "invalid_argument"),  # given but empty is not the default
        ({"format": "ZIP"}, 400, "invalid_argument"),  # the documented values, exactly
    ]:
        status, body = await api("GET", "repos/images/commits/master/archive", params=params)
        assert (status, body["error"]) == (code, error), (params, body)
    status, body = await api("GET", "repos/nosuch/commits/master/archive")
    assert (status, body["error"]) == (404, "not_found")


# -- the Python API and the magic ------------------------------------------------------------------------
def check_got(target, *, first: bool) -> None:
    assert (target / "001.png").read_bytes() == (b"png-1" if first else b"png-1 changed")
    assert (target / "kittens" / "002.png").read_bytes() == BIG
    assert not list(target.rglob("*.part"))


def use_get(client, made, tmp_path) -> None:
    done = client.get("images@master:/cats", tmp_path / "cats")
    assert (done.files, done.bytes, done.commit) == (2, len(b"png-1 changed") + len(BIG), made["second"])
    check_got(tmp_path / "cats", first=False)
    client.get(f"images@{made['first']}:/cats", tmp_path / "cats")  # replaces what is there
    check_got(tmp_path / "cats", first=True)
    client.get("images@master^1", tmp_path / "all")
    assert sorted(p.relative_to(tmp_path / "all").as_posix() for p in (tmp_path / "all").rglob("*")) == \
        ["cats", "cats-and-dogs.txt", "cats/001.png", "cats/kittens", "cats/kittens/002.png", "dogs", "dogs/001.png",
         "ünï ça.txt"]
    client.get("images@master:/cats/001.png", tmp_path / "one")
    assert os.listdir(tmp_path / "one") == ["001.png"]
    with pytest.raises(NotFound):
        client.get("images@master:/dogs", tmp_path / "none")
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="not a directory"):
        client.get("images@master:/cats", tmp_path / "file")


def test_direct_client_get(store, tmp_path):
    backend, made = store
    backend.close()
    with connect(store=str(tmp_path / "store")) as client:
        use_get(client, made, tmp_path)


def test_get_writes_a_file_whose_name_is_near_the_longest_allowed(tmp_path):
    """The partial file written beside the target is named within the file system's 255 bytes, whatever
    the target's own name (a long one made mkstemp's name too long: OSError)."""
    name = "n" * 250
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("long")
    with backend.commit("long", "master") as c:
        c.put_file(f"/d/{name}", b"long name")
    backend.close()
    with connect(store=str(tmp_path / "store")) as client:
        assert client.get("long@master:/d", tmp_path / "out").files == 1
    assert (tmp_path / "out" / name).read_bytes() == b"long name"
    assert os.listdir(tmp_path / "out") == [name]


def test_get_says_what_is_in_the_way(store, tmp_path):
    """A local directory where a file of the download goes, or a local file where one of its directories
    goes: a typed refusal naming the path (was a bare IsADirectoryError / FileExistsError)."""
    backend, made = store
    backend.close()
    (tmp_path / "dir-in-way" / "001.png").mkdir(parents=True)
    (tmp_path / "file-in-way").mkdir()
    (tmp_path / "file-in-way" / "kittens").write_bytes(b"a file")
    with connect(store=str(tmp_path / "store")) as client:
        for local in ("dir-in-way", "file-in-way"):
            with pytest.raises(AlreadyExists, match="in the way"):
                client.get("images@master:/cats", tmp_path / local)


async def test_server_client_get(http_server_client, pachls_state, jp_http_port, jp_base_url, jp_auth_header,
                                 tmp_path):
    made = await asyncio.to_thread(fill, pachls_state.backend)
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    client = ServerClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token)
    try:
        await asyncio.to_thread(use_get, client, made, tmp_path)
    finally:
        client.close()


async def test_a_download_that_fails_midway_is_cut_not_shortened(http_server_client, pachls_state, jp_http_port,
                                                                 jp_base_url, jp_auth_header, tmp_path):
    """A damaged blob found after the first bytes left: the connection is cut, so the client reports a
    broken download instead of extracting a shorter archive that looks whole."""
    made = await asyncio.to_thread(fill, pachls_state.backend)
    backend = pachls_state.backend
    info = backend.inspect_file("images", made["first"], "/cats/kittens/002.png")
    with open(backend.blob_path(info.hash), "r+b") as blob:
        blob.truncate(len(BIG) - 10)
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"

    def read_raw() -> None:  # a finished chunked answer would read to its end without an error
        with httpx.stream("GET", f"{url}pachls/api/repos/images/commits/{made['first']}/archive",
                          headers={"Authorization": f"token {token}"}) as answer:
            assert answer.status_code == 200
            for _ in answer.iter_raw():
                pass

    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        await asyncio.to_thread(read_raw)
    client = ServerClient(url, token)
    try:
        with pytest.raises(Unavailable, match="broke off"):
            await asyncio.to_thread(client.get, f"images@{made['first']}", tmp_path / "out")
    finally:
        client.close()


def test_server_client_refuses_a_tar_that_ends_before_its_end_marker(store):
    """A cut can reach the client as a plain end of the body (a proxy speaking HTTP/1.0 to Jupyter ends
    the answer by closing it): the entries read so far look whole and only the missing end-of-archive
    blocks tell. Cut at an entry boundary, Client.get must say the download broke off."""
    backend, made = store
    whole = b"".join(stream_archive("tar", archive_entries(backend, plan_archive(backend, "images", made["first"], "/")), 0))
    client = ServerClient("http://127.0.0.1:9/")
    try:
        for body, complete in ((whole, True), (whole[:-2 * tarfile.BLOCKSIZE], False)):
            client.request = lambda *args, body=body, **kwargs: io.BytesIO(body)
            members = client._archive_members("images", made["first"], "/")
            if complete:
                assert len([name for name, _ in members]) == len(tar_members(whole))
            else:
                with pytest.raises(Unavailable, match="broke off"):
                    list(members)
    finally:
        client.close()


def test_magic_get(store, tmp_path, capsys):
    backend, _ = store
    backend.close()
    ip = InteractiveShell.instance()
    try:
        magics = PachlsMagics(ip, client_factory=lambda: connect(store=str(tmp_path / "store")))
        done = magics.pachls(f"get images@master:/cats {tmp_path / 'got'}")
        assert done.files == 2
        assert capsys.readouterr().out.startswith(f"Copied 2 files ({len(BIG) + 13:,} bytes) of images@")
        check_got(tmp_path / "got", first=False)
        assert magics.pachls(f"get images@master:/nosuch {tmp_path / 'x'}") is None
        assert capsys.readouterr().err.startswith("pachls: /nosuch not found")
    finally:
        InteractiveShell.clear_instance()
