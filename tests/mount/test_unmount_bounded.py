"""Unmounting never hangs, and mount points are read from mountinfo as the kernel wrote them.

A hung unmount is stood in for by ``fusermount3``/``fusermount``/``umount``/``mount`` programs that
sleep and never end, found first on PATH (the code finds the tools through PATH), in front of a real
FUSE mount of a real ``MountManager``. Mount points with spaces, tabs and non-ASCII letters are real
FUSE mounts too; the decoder alone is checked on the kernel's escapes and on bytes that are not UTF-8.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount import fusefs
from jupyterlab_pachls.mount.fusefs import (fuse_available, fuse_mounts, is_mountpoint, mountinfo_path,
                                            unescape_mountinfo)
from jupyterlab_pachls.pfs import LocalBackend

BOUND = 60.0  # generous: the unmount must end, not be fast
HUNG_TOOLS = ("fusermount3", "fusermount", "umount", "mount")


@pytest.fixture
def fuse():
    ok, why = fuse_available()
    if not ok:
        pytest.skip(f"FUSE not usable here: {why}")


@pytest.fixture
def store(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("images")
    with backend.commit("images", "master", message="first") as c:
        c.put_file("/cats/001.png", b"cat one")
    yield backend
    backend.close()


@pytest.fixture
def hung_tools(tmp_path, monkeypatch, dirs):
    """Unmount tools that hang, first on PATH; afterwards, what they left mounted is unmounted for real."""
    control = "/sys/fs/fuse/connections"
    if os.geteuid() == 0 and os.path.isdir(control) and not os.listdir(control):
        pytest.skip("fusectl is not mounted: ending the connection would run the hung `mount`")
    bin_dir = tmp_path / "hung-bin"
    bin_dir.mkdir()
    for name in HUNG_TOOLS:
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\nexec sleep 600\n")
        tool.chmod(0o755)
    real_path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{bin_dir}:{real_path}")
    real_timeout = fusefs.UNMOUNT_TIMEOUT
    monkeypatch.setattr(fusefs, "UNMOUNT_TIMEOUT", 0.5)
    yield
    os.environ["PATH"] = real_path
    fusefs.UNMOUNT_TIMEOUT = real_timeout
    for point, _ in fuse_mounts():
        if point.startswith(str(tmp_path)):
            fusefs.unmount(point, lazy=True)


def test_a_hung_unmount_command_is_killed_and_the_unmount_ends(fuse, store, dirs, hung_tools, caplog):
    manager = MountManager(store, dirs[0], dirs[1], fuse=True)
    try:
        status = manager.mount("images")
        point = status.mountpoint
        assert is_mountpoint(point)
        caplog.set_level(logging.WARNING, logger=fusefs.__name__)
        started = time.monotonic()
        manager.unmount("images")
        assert time.monotonic() - started < BOUND
        assert manager.list() == []
        warnings = [r.getMessage() for r in caplog.records]
        assert any("did not end within" in w for w in warnings), warnings
        # the FUSE connection was ended (fusectl abort): no thread serves the mount any more
        assert not [t.name for t in threading.enumerate() if t.name.startswith("pachls-fuse-")]
        # gone, or said to be still there
        assert not is_mountpoint(point) or any("still mounted" in w and point in w for w in warnings)
    finally:
        manager.close()


def test_mount_points_with_spaces_tabs_and_non_ascii_letters_are_found(fuse, store, tmp_path):
    mount_dir = tmp_path / "Datensätze über\tLabels"
    manager = MountManager(store, mount_dir, tmp_path / "state", fuse=True)
    try:
        point = manager.mount("images").mountpoint
        assert point.startswith(str(mount_dir))
        assert point in [p for p, _ in fuse_mounts()]
        assert is_mountpoint(point)
        with open(os.path.join(point, "cats", "001.png"), "rb") as f:
            assert f.read() == b"cat one"
        manager.unmount("images")
        assert not is_mountpoint(point)
    finally:
        manager.close()
    assert not [p for p, _ in fuse_mounts() if p.startswith(str(tmp_path))]


@pytest.mark.parametrize("field,text", [
    (rb"/a\040b", "/a b"),
    (rb"/a\011b\012c", "/a\tb\nc"),
    (rb"/back\134slash", "/back\\slash"),
    ("/Datensätze/ü".encode(), "/Datensätze/ü"),
    (b"/not-utf8-\xff", "/not-utf8-\udcff"),
    (rb"/\134040", "/\\040"),  # an escaped backslash followed by digits stays a backslash and digits
])
def test_mountinfo_fields_are_decoded_as_the_kernel_escapes_them(field, text):
    assert unescape_mountinfo(field) == text


def test_mount_points_are_compared_with_the_parent_resolved_and_the_mount_itself_not_looked_up(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (real / "point").symlink_to(tmp_path / "elsewhere")  # the last component is kept, not followed
    assert mountinfo_path(str(tmp_path / "link" / "point")) == str(real.resolve() / "point")
