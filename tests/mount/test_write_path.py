"""The write path of read-write mounts: what the kernel may cache in a FUSE mount and when it must drop
it, what a commit does with the staged copies of what landed, and a commit of added files without
reading them twice."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from jupyterlab_pachls.mount import fusefs, overlay
from jupyterlab_pachls.mount.model import ERROR, MOUNTED

from .conftest import repo_state, tree_of

fuse_only = pytest.mark.parametrize("presentation", ["fuse"], indirect=True)
local_only = pytest.mark.parametrize("backend_spec", ["local"], indirect=True)


def pending(manager, name="images") -> dict[str, str]:
    return {c.path: c.change for c in manager.changes(name).changes}


def caching(manager, name="images") -> bool:
    return manager._mounts[name].fuse.ops.caches_entries


@fuse_only
@local_only
def test_names_the_kernel_cached_follow_staging_discard_and_refresh(manager, images, backend):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    if not caching(manager):
        pytest.skip("this kernel cannot drop cached entries at once (FUSE protocol < 7.44): none are cached")
    # looked up missing, then staged by the server: seen at once
    assert not (mp / "cats" / "003.png").exists()
    manager.stage_files("images", {"/cats/003.png": b"cat three"})
    assert (mp / "cats" / "003.png").read_bytes() == b"cat three"
    # a file added through the mount and a file deleted through it, both looked at, then discarded
    (mp / "new.txt").write_bytes(b"new")
    assert (mp / "new.txt").stat().st_size == 3
    os.unlink(mp / "dogs" / "001.png")
    assert not (mp / "dogs" / "001.png").exists()
    (mp / "cats" / "001.png").write_bytes(b"a much longer cat one")
    assert (mp / "cats" / "001.png").stat().st_size == len(b"a much longer cat one")
    assert manager.discard("images") == 4
    assert not (mp / "new.txt").exists()
    assert (mp / "dogs" / "001.png").read_bytes() == b"dog one"
    assert (mp / "cats" / "001.png").stat().st_size == len(b"cat one")
    assert (mp / "cats" / "001.png").read_bytes() == b"cat one"
    (mp / "new.txt").write_bytes(b"made again")  # the name dropped by the discard can be created again
    assert pending(manager) == {"/new.txt": "added"}
    # another writer's commit adds a name looked up missing here: the refresh shows it
    assert not (mp / "dogs" / "002.png").exists()
    with backend.commit("images", "master", message="more dogs") as c:
        c.put_file("/dogs/002.png", b"dog two")
    manager.refresh("images")
    assert (mp / "dogs" / "002.png").read_bytes() == b"dog two"
    assert pending(manager) == {"/new.txt": "added"}


@fuse_only
@local_only
def test_a_copy_into_the_mount_asks_the_daemon_less_where_the_kernel_caches(manager, images, tmp_path, monkeypatch):
    counts: dict[str, int] = {}
    wrapper = fusefs.mfusepy.FUSE._wrapper

    def counting(fuse, func, *args, **kwargs):
        counts[func.__name__] = counts.get(func.__name__, 0) + 1
        return wrapper(fuse, func, *args, **kwargs)

    monkeypatch.setattr(fusefs.mfusepy.FUSE, "_wrapper", counting)
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    if not caching(manager):
        pytest.skip("this kernel cannot drop cached entries at once (FUSE protocol < 7.44): none are cached")
    source = tmp_path / "source" / "batch"
    source.mkdir(parents=True)
    for i in range(40):
        (source / f"{i:03d}.bin").write_bytes(os.urandom(100))
    counts.clear()
    subprocess.run(["cp", "-r", str(source), str(mp / "cats")], check=True)
    getattrs = sum(n for name, n in counts.items() if name.startswith("getattr"))
    # per new file: the name checked missing, and the attributes libfuse asks after the create (answered
    # from the open file); directories on the way and the copy's own fstat come from the kernel's cache
    assert getattrs <= 2 * 40 + 5, counts
    assert tree_of(mp / "cats" / "batch") == {f"/{i:03d}.bin": (source / f"{i:03d}.bin").read_bytes()
                                             for i in range(40)}


@fuse_only
def test_a_commit_drops_the_staged_copies_of_what_landed_without_reading_them(manager, images, backend,
                                                                              monkeypatch):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    for i in range(20):
        (mp / "cats" / f"new{i:02d}.png").write_bytes(b"new cat %d" % i)
    (mp / "cats" / "001.png").write_bytes(b"changed cat")
    os.listdir(mp / "cats")  # the kernel sends a close's release in the background: this request comes after
    upper = manager._mounts["images"].overlay.upper
    hashed = []
    real_hash = overlay.file_hash
    monkeypatch.setattr(overlay, "file_hash", lambda path: hashed.append(str(path)) or real_hash(path))
    landed = manager.commit("images", "twenty cats", "ana")
    assert hashed == []
    assert [p for p in upper.rglob("*") if p.is_file()] == []
    removing = manager._mounts["images"].overlay.removing  # upper/ set aside whole, removed in the background
    removing.join(30)
    assert not removing.is_alive() and not list(upper.parent.parent.glob(overlay.SET_ASIDE + "*"))
    assert pending(manager) == {}
    want = repo_state(backend, "images", landed.id)
    assert want["/cats/001.png"] == b"changed cat" and want["/cats/new07.png"] == b"new cat 7"
    assert tree_of(mp) == want


@fuse_only
@local_only
def test_a_file_open_for_writing_across_a_commit_keeps_its_later_writes_pending(manager, images, backend):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    with open(mp / "log.txt", "wb", buffering=0) as log:
        log.write(b"line 1\n")
        landed = manager.commit("images", "first line", "ana")
        assert repo_state(backend, "images", landed.id)["/log.txt"] == b"line 1\n"
        log.write(b"line 2\n")
    assert (mp / "log.txt").read_bytes() == b"line 1\nline 2\n"
    assert pending(manager) == {"/log.txt": "modified"}


@fuse_only
@local_only
@pytest.mark.parametrize("cut", ["set-aside", "one-by-one"])
def test_a_commit_cut_short_while_dropping_staged_copies_loses_nothing(manager, images, backend, monkeypatch, cut):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    for i in range(6):
        (mp / f"f{i}.txt").write_bytes(b"file %d" % i)
    os.listdir(mp)  # after the releases of those closes (sent in the background): none is open any more
    if cut == "set-aside":  # everything staged lands: upper/ is set aside whole; that rename fails
        real_rename = os.rename

        def failing(src, dst, *args, **kwargs):
            if overlay.SET_ASIDE in str(dst):
                raise OSError(errno.EIO, "disk gone", str(dst))
            return real_rename(src, dst, *args, **kwargs)

        monkeypatch.setattr(overlay.os, "rename", failing)
    else:  # an empty directory (shown, never committed) keeps upper/: the copies go one by one; one fails
        (mp / "empty").mkdir()
        real_unlink, calls = os.unlink, []

        def failing(path, *args, **kwargs):
            if "/upper/" in str(path):  # a staged copy
                calls.append(path)
                if len(calls) == 3:
                    raise OSError(errno.EIO, "disk gone", path)
            return real_unlink(path, *args, **kwargs)

        monkeypatch.setattr(overlay.os, "unlink", failing)
    landed = manager.commit("images", "six files", "ana")  # landed: never reported as failed
    monkeypatch.undo()
    assert manager.status("images").state == ERROR
    want = repo_state(backend, "images", landed.id)
    assert want["/f5.txt"] == b"file 5"
    manager.refresh("images")
    assert manager.status("images").state == MOUNTED
    assert pending(manager) == {} and tree_of(mp) == want
    assert (mp / "empty").is_dir() == (cut == "one-by-one")


@local_only
def test_a_commit_of_added_files_hashes_none_of_them(manager, images, backend, presentation, monkeypatch):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    for i in range(10):
        (mp / f"n{i}.txt").write_bytes(b"n %d" % i)
    hashed = []
    real_hash = overlay.file_hash  # what both stages hash local files with (HashCache)
    monkeypatch.setattr(overlay, "file_hash", lambda path: hashed.append(str(path)) or real_hash(path))
    assert len(pending(manager)) == 10
    manager.commit("images", "ten", "ana")
    assert hashed == []  # the store gives the sha256 of what landed; nothing read to find it
    (mp / "n3.txt").write_bytes(b"n 3")  # the same bytes again: no change
    assert pending(manager) == {}


@local_only
@pytest.mark.parametrize("presentation", ["no-fuse"], indirect=True)
def test_a_file_rewritten_within_its_timestamp_tick_after_the_commit_read_it_stays_pending(
        manager, images, backend, monkeypatch):
    # A coarse file clock (one tick, 1-10 ms; a second on some file systems) gives a rewrite of the same
    # size right after the commit read the file the mtime it already had: its stat cannot vouch for it.
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    (mp / "new.txt").write_bytes(b"AAAA")  # added: not hashed by the scan
    (mp / "cats" / "001.png").write_bytes(b"cat 1 v2")  # modified: hashed by the scan
    real_put = backend.put_files

    def put_then_rewrite(opened, puts):
        real_put(opened, puts)
        for rel, data in (("new.txt", b"BBBB"), ("cats/001.png", b"cat 1 v3")):
            st = os.stat(mp / rel)
            with open(mp / rel, "r+b") as f:  # in place: same inode, same size
                f.write(data)
            os.utime(mp / rel, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same tick

    monkeypatch.setattr(backend, "put_files", put_then_rewrite)
    manager.commit("images", "v2", "ana")
    assert pending(manager) == {"/new.txt": "modified", "/cats/001.png": "modified"}
    manager.commit("images", "v3", "ana")
    assert tree_of(mp) == repo_state(backend, "images", "master")
    assert (mp / "new.txt").read_bytes() == b"BBBB" and pending(manager) == {}


@fuse_only
@local_only
def test_a_staged_file_rewritten_within_its_timestamp_tick_is_not_taken_for_the_base(manager, images):
    manager.mount("images", mode="rw")
    mp = Path(manager.status("images").mountpoint)
    target = mp / "cats" / "001.png"
    target.write_bytes(b"cat one")  # the base's bytes again: hashed by the scan, no change
    assert pending(manager) == {}
    st = os.stat(target)
    with open(target, "r+b") as f:  # in place, the same size, within the same tick (mtime put back)
        f.write(b"cat ONE")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert pending(manager) == {"/cats/001.png": "modified"}
    manager.refresh("images")  # prunes copies equal to the base
    assert target.read_bytes() == b"cat ONE"
