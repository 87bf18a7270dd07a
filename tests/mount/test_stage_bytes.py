"""``MountManager.stage_files``: many files written (or deleted) into a read-write mount's stage in one
call, not through the kernel. What a reader of the mount sees afterwards, what is pending, what a commit
lands, and that a call that fails stages nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs.errors import InvalidArgument, InvalidPath, Unavailable

from .conftest import repo_state, tree_of


def pending(manager, name="images") -> dict[str, str]:
    return {c.path: c.change for c in manager.changes(name).changes}


def test_a_reader_of_the_mount_sees_the_staged_bytes_and_the_commit_lands_them(manager, images, backend):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    before = tree_of(mp)  # read everything once: whatever the kernel caches, it has now
    assert os.stat(mp / "cats" / "001.png").st_size == len(b"cat one")
    assert manager.stage_files("images", {
        "/cats/001.png": b"a new cat",           # modified
        "new/deep/x.json": b'{"x": 1}\n',         # added, directories made
        "/dogs/001.png": None,                    # deleted
        "/README.md": b"# images\n",              # the committed bytes: no change
        "/never/was.txt": None,                   # deleting a missing file: no change
    }) == 5
    assert (mp / "cats" / "001.png").read_bytes() == b"a new cat"
    assert os.stat(mp / "cats" / "001.png").st_size == len(b"a new cat")
    assert not (mp / "dogs" / "001.png").exists() and "001.png" not in os.listdir(mp / "dogs")
    assert sorted(os.listdir(mp / "new" / "deep")) == ["x.json"]
    want = dict(before)
    want.update({"/cats/001.png": b"a new cat", "/new/deep/x.json": b'{"x": 1}\n'})
    del want["/dogs/001.png"]
    assert tree_of(mp) == want
    assert pending(manager) == {"/cats/001.png": "modified", "/new/deep/x.json": "added",
                                "/dogs/001.png": "deleted"}
    assert manager.status("images").pending == 3

    landed = manager.commit("images", "staged", "ana")
    assert repo_state(backend, "images", landed.id) == want
    assert pending(manager) == {} and tree_of(mp) == want

    # again on top: replace a staged-then-committed file, delete a file added through the mount
    (mp / "scratch.txt").write_bytes(b"scratch")
    manager.stage_files("images", {"/new/deep/x.json": b'{"x": 2}\n', "/scratch.txt": None})
    assert (mp / "new" / "deep" / "x.json").read_bytes() == b'{"x": 2}\n'
    assert not (mp / "scratch.txt").exists()
    assert pending(manager) == {"/new/deep/x.json": "modified"}
    # staging the base's bytes back is no change; deleting a deleted file neither
    manager.stage_files("images", {"/new/deep/x.json": b'{"x": 1}\n', "/dogs/001.png": None})
    assert pending(manager) == {}


def test_a_file_deleted_then_written_again_and_a_file_open_for_reading(manager, images):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    with open(mp / "cats" / "002.png", "rb") as reader:  # open before: keeps what it opened
        manager.stage_files("images", {"/cats/002.png": None})
        assert not (mp / "cats" / "002.png").exists()
        manager.stage_files("images", {"/cats/002.png": b"back again"})
        assert reader.read() == b"cat two"
    assert (mp / "cats" / "002.png").read_bytes() == b"back again"
    assert pending(manager) == {"/cats/002.png": "modified"}


@pytest.mark.parametrize("bad", ["../x.txt", "/a/../b.txt", "/a//b.txt", "a\x00b", "/", "", "a\u202eb",
                                 "/" + "x" * 300])
def test_a_bad_path_stages_nothing(manager, images, bad):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    before = tree_of(mp)
    with pytest.raises(InvalidPath):
        manager.stage_files("images", {"/ok.txt": b"ok", bad: b"bad", "/cats/001.png": None})
    assert tree_of(mp) == before and pending(manager) == {}


def test_refused_calls_stage_nothing(manager, images):
    manager.mount("images", mode="rw")
    manager.mount("images", name="ro")
    mp = Path(manager.status("images").mountpoint)
    before = tree_of(mp)
    refused = [
        ({"/ok.txt": b"ok", "/cats": b"a directory"}, InvalidPath),        # a directory of the base
        ({"/ok.txt": b"ok", "/cats": None}, InvalidPath),
        ({"/ok.txt": b"ok", "/README.md/x.txt": b"x"}, InvalidPath),      # a file where a directory is needed
        ({"/ok.txt": b"ok", "/d": b"file", "/d/e.txt": b"below"}, InvalidArgument),
        ({"/ok.txt": b"ok", "ok.txt": b"twice"}, InvalidArgument),
        ({"/ok.txt": b"ok", "/n.txt": "text, not bytes"}, InvalidArgument),
    ]
    for files, error in refused:
        with pytest.raises(error):
            manager.stage_files("images", files)
        assert tree_of(mp) == before and pending(manager) == {}, files
    (mp / "made").mkdir()  # a directory made in the mount (not yet a change)
    with pytest.raises(InvalidPath):
        manager.stage_files("images", {"/ok.txt": b"ok", "/made": b"x"})
    assert not (mp / "ok.txt").exists() and pending(manager) == {}
    with pytest.raises(InvalidArgument):
        manager.stage_files("ro", {"/x.txt": b"x"})


@pytest.mark.parametrize("presentation", ["no-fuse"], indirect=True)  # FUSE refuses symlinks (EPERM)
def test_no_fuse_never_follows_a_symlink_in_the_mount(manager, images, presentation, tmp_path):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"untouched")
    os.symlink(outside, mp / "link")
    os.symlink(outside / "victim.txt", mp / "cats" / "alias.png")
    for files in ({"/ok.txt": b"ok", "/link/victim.txt": b"pwned"},
                  {"/ok.txt": b"ok", "/link/new.txt": b"pwned"},
                  {"/ok.txt": b"ok", "/link/victim.txt": None},
                  {"/ok.txt": b"ok", "/cats/alias.png": b"pwned"},
                  {"/ok.txt": b"ok", "/cats/alias.png": None}):
        with pytest.raises(InvalidPath):
            manager.stage_files("images", files)
        assert not (mp / "ok.txt").exists()
    assert sorted(os.listdir(outside)) == ["victim.txt"] and (outside / "victim.txt").read_bytes() == b"untouched"
    leftovers = [p for p in tree_of(mp) if ".pachls-" in p]
    assert not leftovers


@pytest.fixture
def small_fs(tmp_path):
    point = tmp_path / "small"
    point.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "pachls-stage-full", str(point)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


def test_a_full_disk_stages_nothing_and_the_same_call_works_later(backend, images, small_fs, presentation):
    manager = MountManager(backend, small_fs / "pfs", small_fs / "state",
                           fuse=True if presentation == "fuse" else None)
    try:
        manager.mount("images", mode="rw")
        mp = Path(manager.status("images").mountpoint)
        before = tree_of(mp)
        big = {f"/big/{i}.bin": os.urandom(1 << 20) for i in range(6)}  # 6 MB on a 4 MB filesystem
        with pytest.raises(Unavailable) as info:
            manager.stage_files("images", {"/cats/001.png": b"changed", **big})
        assert info.value.details["reason"] == "disk_full"
        assert tree_of(mp) == before and pending(manager) == {}
        stray = [str(p) for p in small_fs.rglob("*") if ".pachls-stage-" in p.name or ".pachls-old-" in p.name]
        assert not stray
        small = {"/cats/001.png": b"changed", "/big/0.bin": big["/big/0.bin"]}
        manager.stage_files("images", small)
        assert pending(manager) == {"/cats/001.png": "modified", "/big/0.bin": "added"}
        assert (mp / "big" / "0.bin").read_bytes() == big["/big/0.bin"]
    finally:
        manager.close()


@pytest.mark.parametrize("presentation", ["fuse"], indirect=True)
def test_whiteouts_that_cannot_be_saved_put_every_file_back(manager, images, presentation):
    """The overlay's whiteouts land in SQLite after the files are in place: if that COMMIT fails (a
    full disk: SQLITE_FULL), the files replaced or deleted by the call are all put back."""
    import sqlite3

    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    (mp / "staged.txt").write_bytes(b"staged before")
    before, pending_before = tree_of(mp), pending(manager)
    overlay = manager._mounts["images"].overlay
    real = overlay._db

    class FullOnCommit:  # the store's database as it behaves on a full disk: COMMIT fails
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

    overlay._db = FullOnCommit()
    try:
        with pytest.raises(Exception):
            manager.stage_files("images", {"/staged.txt": b"replaced", "/cats/001.png": None,
                                           "/new.txt": b"new"})
    finally:
        overlay._db = real
    assert tree_of(mp) == before and pending(manager) == pending_before
