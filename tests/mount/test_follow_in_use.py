"""A read-only mount of a branch follows its head by itself (the panel's poll) only while no process
uses it: a file of it open, or a working directory in it. FUSE replaces the mount by a new one (its
readers would get ENOTCONN), no FUSE switches to another directory (a reader walking it would mix two
commits). A poll after the file is closed follows; an explicit refresh moves it at once."""

from __future__ import annotations

import os

from .conftest import tree_of


def test_a_read_only_mount_in_use_waits_to_follow_its_branch(manager, images, backend):
    manager.mount("images")
    root = manager.mount_dir / "images"
    with backend.commit("images", "master", message="more") as c:
        c.put_file("/cats/003.png", b"cat three")
    with open(root / "cats" / "001.png", "rb") as reading:
        assert manager.follow_head("images") is False
        assert manager.status("images").base == images.id
        assert reading.read() == b"cat one"  # still readable: nothing pulled from under it
    assert manager.follow_head("images") is True
    assert manager.status("images").base == c.finished.id
    assert tree_of(root)["/cats/003.png"] == b"cat three"


def test_a_working_directory_in_the_mount_counts_and_a_refresh_still_moves_it(manager, images, backend):
    manager.mount("images")
    with backend.commit("images", "master", message="more") as c:
        c.put_file("/dogs/002.png", b"dog two")
    here = os.getcwd()
    os.chdir(manager.mount_dir / "images" / "dogs")
    try:
        assert manager.follow_head("images") is False
    finally:
        os.chdir(here)
    with open(manager.mount_dir / "images" / "README.md", "rb"):
        assert manager.refresh("images").base == c.finished.id  # asked for: moves at once


def test_a_mount_dir_reached_through_a_symlink_is_still_seen_in_use(backend, images, presentation, tmp_path):
    """/proc names the files a process holds by their real path: a mount directory configured through a
    symlink (a home or /tmp behind one) must still be recognised."""
    from jupyterlab_pachls.mount import MountManager

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    manager = MountManager(backend, tmp_path / "link" / "pfs", tmp_path / "state",
                           fuse=True if presentation == "fuse" else None)
    try:
        manager.mount("images")
        with backend.commit("images", "master", message="more") as c:
            c.put_file("/cats/003.png", b"cat three")
        with open(manager.mount_dir / "images" / "cats" / "001.png", "rb"):
            assert manager.follow_head("images") is False
        assert manager.follow_head("images") is True
        assert manager.status("images").base == c.finished.id
    finally:
        manager.close()


def test_in_use_counts_the_mount_and_below_never_a_sibling_sharing_its_prefix(tmp_path):
    from jupyterlab_pachls.mount.manager import in_use

    for name in ("images", "images2"):
        (tmp_path / name / "cats").mkdir(parents=True)
        (tmp_path / name / "cats" / "001.png").write_bytes(b"cat")
    root, sibling = str(tmp_path / "images"), str(tmp_path / "images2")
    assert in_use([root]) is False
    with open(tmp_path / "images2" / "cats" / "001.png", "rb"):
        assert (in_use([root]), in_use([sibling]), in_use([sibling + "/"])) == (False, True, True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # the root itself open (a listing in progress)
    try:
        assert in_use([root]) is True
    finally:
        os.close(fd)
