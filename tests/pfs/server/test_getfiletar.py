"""``GetFileTAR`` of ``jupyter pachls serve`` (read through the real ``pachyderm_sdk`` client) and the
Pachyderm backend's bulk read over it (``PachydermBackend.read_tree``: one GetFileTAR, not a call per file)."""

from __future__ import annotations

import io
import os
import tarfile

import grpc
import pytest
from pachyderm_sdk.api import pfs

from jupyterlab_pachls.pfs import NotFound, open_backend

BIG = os.urandom((1 << 20) + 12345)  # spans GetFile-sized messages
FILES = {"/cats/1.png": b"one", "/cats/sub/2.png": b"two", "/cats-x.txt": b"x", "/dogs/3.png": BIG,
         "/odd [1].txt": b"a name pachd would read as a glob"}


def tar_of(client, commit, path: str) -> list[tuple[str, str, bytes | None]]:
    data = b"".join(m.value for m in client.pfs.get_file_tar(file=pfs.File(commit=commit, path=path)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, "dir" if m.isdir() else "file", tar.extractfile(m).read() if m.isfile() else None)
                for m in tar.getmembers()]


def test_get_file_tar_sends_each_entry_once_in_path_order(client, master, put):
    info = put(master, FILES)
    assert tar_of(client, info.commit, "/cats") == [
        ("/cats", "dir", None), ("/cats/1.png", "file", b"one"), ("/cats/sub", "dir", None),
        ("/cats/sub/2.png", "file", b"two")]
    # a glob matching a directory and what is below it: below it comes once, inside the directory
    assert [name for name, _, _ in tar_of(client, info.commit, "/cats*")] == \
        ["/cats-x.txt", "/cats", "/cats/1.png", "/cats/sub", "/cats/sub/2.png"]
    assert [name for name, _, _ in tar_of(client, info.commit, "/**")] == [
        "/cats-x.txt", "/cats", "/cats/1.png", "/cats/sub", "/cats/sub/2.png", "/dogs", "/dogs/3.png", "/odd [1].txt"]
    whole = tar_of(client, info.commit, "/")  # the root entry "/" reads back as "" (tarfile strips the slash)
    assert whole[0] == ("", "dir", None) and ("/dogs/3.png", "file", BIG) in whole
    assert tar_of(client, info.commit, "/dogs/3.png") == [("/dogs/3.png", "file", BIG)]
    with pytest.raises(grpc.RpcError) as missing:
        tar_of(client, info.commit, "/nosuch")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_file_tar_of_an_open_commit_holds_what_it_staged(client, master, put):
    put(master, {"/a.txt": b"a"})
    opened = client.pfs.start_commit(branch=master)
    client.pfs.put_file_from_bytes(commit=opened, path="/b/c.txt", data=b"c")
    assert tar_of(client, opened, "/") == [("", "dir", None), ("/a.txt", "file", b"a"), ("/b", "dir", None),
                                          ("/b/c.txt", "file", b"c")]


def test_pachyderm_backend_reads_a_tree_in_one_get_file_tar(served, tmp_path, client, master, put, monkeypatch):
    store, port = served
    info = put(master, FILES)
    cluster = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"})
    try:
        asked: list[str] = []
        calls = cluster.channel.get_file

        def counted(request, *, tar=False):
            asked.append("GetFileTAR" if tar else "GetFile")
            return calls(request, tar=tar)

        monkeypatch.setattr(cluster.channel, "get_file", counted)
        for path in ("/", "/cats", "/dogs/3.png"):
            asked.clear()
            got = [(i.path, i.type, None if c is None else b"".join(c))
                   for i, c in cluster.read_tree("images", info.commit.id, path)]
            expected = [(i.path, i.type, None if c is None else b"".join(c))
                        for i, c in store.read_tree("images", info.commit.id, path)]
            assert got == expected and asked == ["GetFileTAR"], path
        with pytest.raises(NotFound):
            list(cluster.read_tree("images", info.commit.id, "/nosuch"))
    finally:
        cluster.close()


def test_a_path_range_is_refused_not_ignored(client, master, put):
    """pachd 2.12 reads only the entries inside a GetFile/GetFileTAR path_range; serve does not, so it
    says so (UNIMPLEMENTED) rather than send the whole tree as if it were the range."""
    info = put(master, FILES)
    ranged = pfs.PathRange(lower="/cats/", upper="/dogs/")
    for call in (client.pfs.get_file_tar, client.pfs.get_file):
        with pytest.raises(grpc.RpcError) as refused:
            b"".join(m.value for m in call(file=pfs.File(commit=info.commit, path="/dogs/3.png"), path_range=ranged))
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, call
    assert tar_of(client, info.commit, "/dogs/3.png") == [("/dogs/3.png", "file", BIG)]  # no range: served
