"""A no-FUSE read-only view cannot change the store, whoever writes to it.

The owner of a view's files can ``chmod +w`` them (root needs not even that): writing, truncating or
appending through the view must change that view's file only, never the bytes of a commit (the
embedded store's blobs, shared by every commit holding the same content) nor the mount server's
content cache (from which other mounts of a Pachyderm cluster are built). The attack runs as the
user who owns the store and the views (as root, a child process under an unprivileged uid does it,
since mode bits do not stop root: see ``mount/plain.py``), and once as root itself.

Also the content cache under eviction: a reader always gets the bytes it asked for, even when the
file is removed right after it was found, and hashing never downloads a file again.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount.tree import CommitTree, ContentCache
from jupyterlab_pachls.pfs import LocalBackend, open_backend
from jupyterlab_pachls.pfs.server import make_server

UNPRIVILEGED = 65534  # nobody
FILES = {"/edit.txt": b"committed bytes to edit", "/trunc.txt": b"committed bytes to truncate",
         "/append.txt": b"committed bytes to append to", "/dir/deep.txt": b"deep committed bytes"}


def attack(view: str) -> None:
    """What a user can do to the files of a read-only view they own."""
    for path in FILES:
        os.chmod(view + path, 0o644)
    with open(view + "/edit.txt", "r+b") as f:  # in place: the same inode
        f.write(b"EDITED")
    os.truncate(view + "/trunc.txt", 3)
    with open(view + "/append.txt", "ab") as f:
        f.write(b" and more")
    with open(view + "/dir/deep.txt", "r+b") as f:
        f.truncate(0)
        f.write(b"replaced")


def scenario(work: str, kind: str) -> dict:
    """Two commits sharing every blob, a view of the first, attacked; what the store says after."""
    server = served = None
    if kind == "local":
        backend = LocalBackend(os.path.join(work, "store"))
        checked = backend
    else:
        served = LocalBackend(os.path.join(work, "served"))
        server, port = make_server(served, "127.0.0.1:0")
        backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"})
        checked = served
    try:
        backend.create_repo("data")
        with backend.commit("data", "master", message="first") as c:
            c.put_files(list(FILES.items()))
        first = c.finished.id
        with backend.commit("data", "master", message="second, sharing the blobs") as c:
            c.put_file("/other.txt", b"other")
        manager = MountManager(backend, os.path.join(work, "pfs"), os.path.join(work, "state"), fuse=False)
        try:
            status = manager.mount(f"data@{first}", mode="ro")
            view = os.path.realpath(status.mountpoint)
            attack(view)
            seen_in_view = {p: open(view + p, "rb").read() for p in FILES}
            later = manager.mount("data", mode="ro", name="later")  # built after the attack
            later_view = {p: open(later.mountpoint + p, "rb").read() for p in FILES}
        finally:
            manager.close()
        report = checked.fsck(verify_content=True)
        return {
            "view": {p: b.decode() for p, b in seen_in_view.items()},
            "first": {p: backend.get_file("data", first, p).decode() for p in FILES},
            "master": {p: backend.get_file("data", "master", p).decode() for p in FILES},
            "later_view": {p: b.decode() for p, b in later_view.items()},
            "fsck": report.problems,
        }
    finally:
        backend.close()
        if server is not None:
            server.stop(grace=None).wait()
        if served is not None:
            served.close()


def run_as(uid: int | None, kind: str) -> dict:
    """``scenario`` in a child process (under ``uid`` when given), in a directory that user owns."""
    work = tempfile.mkdtemp(prefix="pachls-views-")
    try:
        command = [sys.executable, __file__, work, kind]
        if uid is not None:
            os.chown(work, uid, uid)
            command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HOME": work, "PACHLS_NO_FUSE": "1"})
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("kind", ["local", "pachyderm"])
@pytest.mark.parametrize("who", ["owner", "root"])
def test_writing_through_a_read_only_view_never_changes_a_commit(kind, who):
    if who == "root":
        if os.geteuid() != 0:
            pytest.skip("needs root")
        uid = None
    else:  # the owner of the store and the views: this user, or an unprivileged one when run as root
        if os.geteuid() == 0 and shutil.which("setpriv") is None:
            pytest.skip("running as root, and no setpriv to become an unprivileged user")
        uid = UNPRIVILEGED if os.geteuid() == 0 else None
    found = run_as(uid, kind)
    committed = {p: b.decode() for p, b in FILES.items()}
    # the writes did happen, in the view's own files
    assert found["view"] == {"/edit.txt": "EDITEDted bytes to edit", "/trunc.txt": "com",
                             "/append.txt": "committed bytes to append to and more", "/dir/deep.txt": "replaced"}
    assert found["first"] == committed  # the commit the view shows
    assert found["master"] == committed  # another commit sharing the blobs
    assert found["later_view"] == committed  # a view built afterwards (from the blobs or the content cache)
    assert found["fsck"] == []


# -- the content cache under eviction ----------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path):
    """The Pachyderm backend over real gRPC (opaque hashes: reads go through the content cache), and a
    count of the files it downloads."""
    served = LocalBackend(tmp_path / "served")
    server, port = make_server(served, "127.0.0.1:0")
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"})
    backend.create_repo("data")
    with backend.commit("data", "master") as c:
        c.put_files([("/a.txt", b"a" * 100), ("/b.txt", b"b" * 100)])
    downloads = []
    read_file = backend.read_file

    def counted(repo, ref, path, *args, **kwargs):
        downloads.append(path)
        return read_file(repo, ref, path, *args, **kwargs)

    backend.read_file = counted
    yield backend, c.finished.id, downloads
    backend.close()
    server.stop(grace=None).wait()
    served.close()


def read_all(fd: int) -> bytes:
    try:
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


def test_a_file_removed_right_after_it_was_found_is_still_read(cluster, tmp_path, monkeypatch):
    backend, commit, downloads = cluster
    cache = ContentCache(tmp_path / "cache", max_bytes=1024)
    tree = CommitTree(backend, "data", commit, cache)
    assert read_all(tree.open_file("/a.txt")) == b"a" * 100
    assert downloads == ["/a.txt"]
    # another reader's download evicts the file at the worst moment: between finding it and opening it
    found = cache.path(cache.known_sha256(backend, tree.lookup("/a.txt")))
    real_open = os.open
    evicted = []

    def evicting_open(path, *args, **kwargs):
        if str(path) == str(found) and not evicted:
            evicted.append(path)
            found.unlink()  # as _FilesLRU.popitem removes it
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", evicting_open)
    assert read_all(tree.open_file("/a.txt")) == b"a" * 100  # downloaded again, not an error
    assert evicted
    assert downloads == ["/a.txt", "/a.txt"]


def test_hashing_an_evicted_file_does_not_download_it_again(cluster, tmp_path):
    backend, commit, downloads = cluster
    cache = ContentCache(tmp_path / "cache", max_bytes=150)  # room for one of the two files
    tree = CommitTree(backend, "data", commit, cache)
    digest_a = tree.content_hash("/a.txt")
    digest_b = tree.content_hash("/b.txt")  # evicts a
    assert not cache.path(digest_a).exists() and cache.path(digest_b).exists()
    assert downloads == ["/a.txt", "/b.txt"]
    assert tree.content_hash("/a.txt") == digest_a
    assert downloads == ["/a.txt", "/b.txt"]  # known from its first download


def descriptors_into(directory) -> list[str]:
    fds = "/proc/self/fd"
    found = []
    for fd in os.listdir(fds):
        try:
            target = os.readlink(f"{fds}/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        if target.startswith(str(directory) + "/"):
            found.append(target)
    return found


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["_remember", "_keep"])
def test_a_download_failing_after_its_file_is_opened_leaves_no_descriptor(cluster, tmp_path, monkeypatch, failing):
    backend, commit, _downloads = cluster
    cache = ContentCache(tmp_path / "cache")
    tree = CommitTree(backend, "data", commit, cache)
    monkeypatch.setattr(cache, failing, disk_full)
    with pytest.raises(OSError):
        tree.open_file("/a.txt")
    assert descriptors_into(tmp_path / "cache") == []


def test_a_cached_file_failing_after_it_is_opened_leaves_no_descriptor(cluster, tmp_path, monkeypatch):
    backend, commit, _downloads = cluster
    cache = ContentCache(tmp_path / "cache")
    tree = CommitTree(backend, "data", commit, cache)
    os.close(tree.open_file("/a.txt"))
    monkeypatch.setattr(cache, "_keep", disk_full)
    with pytest.raises(OSError):
        tree.open_file("/a.txt")
    assert descriptors_into(tmp_path / "cache") == []


# -- a restart keeps an untouched view ---------------------------------------------------------------


def test_a_restart_keeps_an_untouched_view_and_rebuilds_one_made_writable(tmp_path, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    with backend.commit("data", "master") as c:
        c.put_files([("/a.txt", b"a" * 100), ("/d/b.txt", b"b")])
    dirs = (tmp_path / "pfs", tmp_path / "state")

    def restarted() -> tuple[str, int, int]:
        manager = MountManager(backend, *dirs)
        try:
            view = os.path.realpath(manager.status("v").mountpoint)
            st = os.stat(os.path.join(view, "a.txt"))
            return view, st.st_ino, st.st_mode & 0o777
        finally:
            manager.close()

    manager = MountManager(backend, *dirs)
    try:
        manager.mount("data", mode="ro", name="v")
    finally:
        manager.close()
    built = restarted()
    assert restarted() == built  # the same view, not built again
    os.chmod(os.path.join(built[0], "a.txt"), 0o644)
    again = restarted()
    assert again[0] != built[0] and again[2] == 0o444  # built again: read-only once more
    assert restarted() == again
    manager = MountManager(backend, *dirs)
    try:  # a refresh that stays on the same commit replaces an edited view too
        os.chmod(os.path.join(again[0], "d"), 0o755)
        with open(os.path.join(again[0], "d", "new.txt"), "wb") as f:
            f.write(b"new")
        manager.refresh("v")
        view = os.path.realpath(manager.status("v").mountpoint)
        assert view != again[0] and sorted(os.listdir(os.path.join(view, "d"))) == ["b.txt"]
        manager.refresh("v")
        assert os.path.realpath(manager.status("v").mountpoint) == view  # untouched: kept
    finally:
        manager.close()
    backend.close()


def test_a_refresh_reuses_the_untouched_unchanged_files_of_the_shown_view(tmp_path, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("data")
    with backend.commit("data", "master") as c:
        c.put_files([("/a.txt", b"a" * 100), ("/d/b.txt", b"b")])
    manager = MountManager(backend, tmp_path / "pfs", tmp_path / "state")
    try:
        mp = manager.mount("data", mode="ro", name="v").mountpoint

        def inode(path: str) -> int:
            return os.stat(os.path.join(mp, path)).st_ino

        a_inode, b_inode = inode("a.txt"), inode("d/b.txt")
        with backend.commit("data", "master") as c:
            c.put_file("/d/b.txt", b"b2")
        manager.refresh("v")
        assert inode("a.txt") == a_inode and inode("d/b.txt") != b_inode  # a.txt linked from the old view
        assert open(os.path.join(mp, "d/b.txt"), "rb").read() == b"b2"
        os.chmod(os.path.join(mp, "a.txt"), 0o644)  # touched: never reused
        with backend.commit("data", "master") as c:
            c.put_file("/c.txt", b"c")
        manager.refresh("v")
        assert inode("a.txt") != a_inode and os.stat(os.path.join(mp, "a.txt")).st_mode & 0o777 == 0o444
        assert os.stat(os.path.join(mp, "a.txt")).st_nlink == 1
        shown = os.path.realpath(mp)
    finally:
        manager.close()
    manager = MountManager(backend, tmp_path / "pfs", tmp_path / "state")
    try:
        assert os.path.realpath(manager.status("v").mountpoint) == shown  # its record is right: kept
        assert backend.fsck(verify_content=True).problems == []
    finally:
        manager.close()
        backend.close()


if __name__ == "__main__":  # the child process of run_as
    print(json.dumps(scenario(sys.argv[1], sys.argv[2])))
