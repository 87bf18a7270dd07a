"""Small contents in the embedded store's database, big ones as blob files: where each lands, that
every read finds both (stores written before small contents moved into the database too), and
that fsck and gc know both."""

from __future__ import annotations

import io
import os
import sqlite3

import pytest

from jupyterlab_pachls.pfs import InvalidArgument, LocalBackend
from jupyterlab_pachls.pfs.local import FLUSH_ROWS

LIMIT = 1024  # a small threshold keeps the big side of these tests small


@pytest.fixture
def store(tmp_path):
    backend = LocalBackend(tmp_path / "store", inline_max=LIMIT)
    backend.create_repo("r")
    yield backend
    backend.close()


def blob_files(store) -> int:
    return sum(1 for p in store.blob_dir.rglob("*") if p.is_file())


def inline_rows(store) -> int:
    with sqlite3.connect(store.root / "meta.sqlite") as db:
        return db.execute("SELECT count(*) FROM inline_blobs").fetchone()[0]


def read_fd(fd: int) -> bytes:
    try:
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


def test_small_contents_live_in_the_database_and_big_ones_in_files(store, tmp_path):
    small, edge, big = b"s" * 100, b"e" * LIMIT, b"b" * (LIMIT + 1)
    source = tmp_path / "source.bin"
    source.write_bytes(b"from a path")
    with store.commit("r", "master") as c:
        c.put_files([("/small", small), ("/edge", edge), ("/big", big), ("/empty", b""),
                     ("/path", source), ("/stream", io.BytesIO(b"from a stream")),
                     ("/big-stream", io.BytesIO(big + b"!"))])
    assert blob_files(store) == 2 and inline_rows(store) == 5
    expected = {"/small": small, "/edge": edge, "/big": big, "/empty": b"", "/path": b"from a path",
                "/stream": b"from a stream", "/big-stream": big + b"!"}
    for path, data in expected.items():
        assert store.get_file("r", "master", path) == data
        info = store.inspect_file("r", "master", path)
        assert info.size == len(data)
        assert read_fd(store.open_blob(info.hash)) == data
        assert b"".join(store.read_file("r", "master", path, offset=3, length=5)) == data[3:8]
    assert store.fsck(verify_content=True).ok


def test_a_reader_returning_less_than_asked_is_read_to_its_end(store):
    class Dribble(io.RawIOBase):  # one byte per read, as a socket or a pipe may answer
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            chunk, self.data = self.data[:1], self.data[1:]
            return chunk

    with store.commit("r", "master") as c:
        c.put_files([("/small", Dribble(b"x" * 300)), ("/big", Dribble(b"y" * (LIMIT + 300)))])
    assert store.get_file("r", "master", "/small") == b"x" * 300
    assert store.get_file("r", "master", "/big") == b"y" * (LIMIT + 300)
    assert blob_files(store) == 1 and inline_rows(store) == 1
    c = store.start_commit("r", "master")
    with pytest.raises(InvalidArgument):
        store.put_files(c, [("/text", io.StringIO("not bytes"))])
    store.abort_commit(c)


def test_a_buffer_changed_after_put_files_does_not_change_the_commit(store):
    data = bytearray(b"before")
    c = store.start_commit("r", "master")
    store.put_files(c, [("/a", data)])
    data[:] = b"after!"
    assert b"".join(store.read_staged(c, "/a")) == b"before"  # still in put_files' buffer
    store.finish_commit(c)
    assert store.get_file("r", "master", "/a") == b"before"


def test_staged_small_contents_are_readable_before_and_after_they_reach_the_database(store):
    c = store.start_commit("r", "master")
    store.put_files(c, [("/buffered", b"one"), ("/empty", b"")])
    assert b"".join(store.read_staged(c, "/buffered")) == b"one"
    assert b"".join(store.read_staged(c, "/empty")) == b""
    puts, _, _ = store.staged_changes(c)  # written to the database
    assert [p for p, _, _ in puts] == ["/buffered", "/empty"] and inline_rows(store) == 2
    assert b"".join(store.read_staged(c, "/buffered")) == b"one"
    store.finish_commit(c)


def test_many_small_files_reach_the_database_in_batches(store):
    files = [(f"/d/{i}", str(i).encode()) for i in range(FLUSH_ROWS + 10)]
    with store.commit("r", "master") as c:
        c.put_files(files)
    assert store.inspect_commit("r", "master").n_files == len(files)
    assert store.get_file("r", "master", f"/d/{FLUSH_ROWS + 5}") == str(FLUSH_ROWS + 5).encode()
    assert blob_files(store) == 0 and inline_rows(store) == len(files)


def test_writing_through_an_opened_small_content_leaves_the_store_unchanged(store):
    with store.commit("r", "master") as c:
        c.put_file("/a", b"committed")
    fd = store.open_blob(store.inspect_file("r", "master", "/a").hash)
    try:
        os.pwrite(fd, b"CHANGED", 0)
    finally:
        os.close(fd)
    assert store.get_file("r", "master", "/a") == b"committed"
    assert store.fsck(verify_content=True).ok


def test_a_store_written_with_blob_files_only_reads_the_same_and_gc_drops_duplicates(tmp_path):
    old = LocalBackend(tmp_path / "store", inline_max=0)  # as every store was written before
    old.create_repo("r")
    with old.commit("r", "master") as c:
        c.put_files([("/a", b"alpha"), ("/b", b"beta")])
    first = c.finished.id
    old.close()
    assert sum(1 for p in (tmp_path / "store" / "blobs").rglob("*") if p.is_file()) == 2

    store = LocalBackend(tmp_path / "store")
    assert store.get_file("r", "master", "/a") == b"alpha"
    assert read_fd(store.open_blob(store.inspect_file("r", "master", "/b").hash)) == b"beta"
    with store.commit("r", "master") as c:  # the same content again, now kept in the database
        c.put_files([("/a2", b"alpha"), ("/c", b"gamma")])
    assert inline_rows(store) == 2 and blob_files(store) == 2
    report = store.fsck(verify_content=True)
    assert report.ok and report.unreferenced_blobs == 1  # alpha's blob file: the database has it
    assert store.gc(grace_seconds=3600) == 0  # too recent
    assert store.gc(grace_seconds=-1) == 1
    assert blob_files(store) == 1
    for ref, path, data in ((first, "/a", b"alpha"), ("master", "/a2", b"alpha"), (first, "/b", b"beta"),
                            ("master", "/c", b"gamma")):
        assert store.get_file("r", ref, path) == data
    assert store.fsck(verify_content=True).ok
    store.close()


def test_fsck_finds_damaged_contents_in_the_database(store):
    with store.commit("r", "master") as c:
        c.put_files([("/a", b"alpha"), ("/b", b"beta")])
    assert store.fsck(verify_content=True).ok
    a, b = (store.inspect_file("r", "master", p).hash for p in ("/a", "/b"))
    with sqlite3.connect(store.root / "meta.sqlite") as db:
        db.execute("UPDATE inline_blobs SET data=? WHERE hash=?", (b"alphx", a))
        db.execute("UPDATE inline_blobs SET data=? WHERE hash=?", (b"beta and more", b))
    assert store.fsck().problems == [f"blob {b} has 13 bytes in the database, 4 expected"]
    problems = store.fsck(verify_content=True).problems
    assert f"blob {a} content in the database does not match its hash" in problems and len(problems) == 2
    with sqlite3.connect(store.root / "meta.sqlite") as db:
        db.execute("DELETE FROM inline_blobs WHERE hash=?", (a,))
    assert f"blob {a} is referenced but missing" in store.fsck().problems


def test_gc_removes_small_contents_nothing_refers_to_at_once(store):
    store.create_repo("drop")
    with store.commit("r", "master") as c:
        c.put_file("/k", b"keep me")
    with store.commit("drop", "master") as c:
        c.put_file("/d", b"drop me")
    opened = store.start_commit("r", "master")
    store.put_files(opened, [("/staged", b"staged, not committed")])
    store.staged_changes(opened)  # in the database now
    aborted = store.start_commit("r", "master")
    store.put_files(aborted, [("/aborted", b"never committed")])
    store.staged_changes(aborted)
    store.abort_commit(aborted)
    store.delete_repo("drop")
    assert store.fsck().unreferenced_blobs == 2
    # no grace needed: a small content is written in the same transaction as the row using it
    assert store.gc(grace_seconds=3600) == 2
    assert inline_rows(store) == 2
    assert store.get_file("r", "master", "/k") == b"keep me"
    assert b"".join(store.read_staged(opened, "/staged")) == b"staged, not committed"
    store.finish_commit(opened)
    assert store.get_file("r", "master", "/staged") == b"staged, not committed"
    report = store.fsck(verify_content=True)
    assert report.ok and report.unreferenced_blobs == 0
