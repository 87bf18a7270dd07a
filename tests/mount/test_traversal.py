"""Path traversal through the mount filesystem (FUSE and no-FUSE): nothing outside a mount is read
into a commit, nothing outside is written, odd names never escape or fold into each other.

A canary directory beside the store holds a file; /etc/passwd is the other target. Every attempt
is either refused (EPERM / EINVAL / ENAMETOOLONG from the mount, or a typed error naming the
entries from the commit) or lands as an ordinary name inside the repo, and afterwards the store
holds no byte of the targets and the canary directory is unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import os
import unicodedata

import pytest

from jupyterlab_pachls.pfs import InvalidArgument, InvalidName, PfsError

from .conftest import repo_state

PASSWD = "/etc/passwd"


@pytest.fixture
def backend_spec(tmp_path) -> dict:
    """The embedded store only (the mount code is the same over every backend; keeps the suite short)."""
    return {"kind": "local", "path": str(tmp_path / "store")}


@pytest.fixture
def canary(tmp_path):
    directory = tmp_path / "canary"
    (directory / "cats").mkdir(parents=True)
    (directory / "secret.txt").write_bytes(b"canary secret\n")
    (directory / "cats" / "001.png").write_bytes(b"canary cat\n")
    return directory


def snapshot(directory) -> dict:
    out = {}
    for dirpath, dirs, files in os.walk(directory):
        for name in files + dirs:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            digest = hashlib.sha256(open(full, "rb").read()).hexdigest() if os.path.isfile(full) else ""
            out[os.path.relpath(full, directory)] = (digest, st.st_mtime_ns, st.st_mode)
    return out


def store_bytes(backend, repo="images") -> bytes:
    return b"".join(repo_state(backend, repo, "master").values())


def assert_no_leak(backend, canary_before, canary):
    everything = store_bytes(backend)
    assert b"canary" not in everything
    with open(PASSWD, "rb") as f:
        assert f.read()[:40] not in everything
    assert snapshot(canary) == canary_before


def test_symlinks_out_of_a_read_write_mount_are_never_committed(manager, images, backend, canary, presentation):
    before = snapshot(canary)
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    attempts = [("passwd", PASSWD), ("secret", str(canary / "secret.txt")), ("up", "../../canary/secret.txt"),
                ("etc", "/etc"), ("loop", "loop")]
    if presentation == "fuse":
        for name, target in attempts:
            with pytest.raises(OSError) as info:
                os.symlink(target, root / name)
            assert info.value.errno == errno.EPERM, name
        with pytest.raises(OSError) as info:
            os.link(canary / "secret.txt", root / "hard")
        assert info.value.errno in (errno.EPERM, errno.EXDEV)
    else:
        for name, target in attempts:
            os.symlink(target, root / name)
        # An existing directory replaced by a symlink to a directory outside holding a same-named file.
        for child in (root / "cats").iterdir():
            child.unlink()
        (root / "cats").rmdir()
        os.symlink(canary / "cats", root / "cats")
        os.link(canary / "secret.txt", root / "hard")
        unsupported = set(manager.changes("images").unsupported)
        assert {"/passwd", "/secret", "/up", "/etc", "/loop", "/cats", "/hard"} <= unsupported
        with pytest.raises(InvalidArgument, match="symlinks"):
            manager.commit("images", "leak")
        assert backend.inspect_branch("images", "master").head.id == images.id  # no commit, not half of one
        for name, _ in attempts:
            os.unlink(root / name)
        os.unlink(root / "cats")
        os.unlink(root / "hard")
    (root / "ok.txt").write_bytes(b"ok")
    manager.commit("images", "fine")
    state = repo_state(backend, "images", "master")
    assert state["/ok.txt"] == b"ok" and not any(p.startswith(("/passwd", "/secret", "/up", "/etc")) for p in state)
    assert_no_leak(backend, before, canary)


def test_a_mount_point_that_is_a_symlink_out_is_never_written_through(make_manager, images, backend, canary,
                                                                      dirs, presentation):
    before = snapshot(canary)
    mount_dir = dirs[0]
    mount_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(canary, mount_dir / "images")
    manager = make_manager()
    for mode in ("rw", "ro"):
        with pytest.raises(PfsError, match="exists and is not an empty directory"):
            manager.mount("images", mode=mode)
    assert os.readlink(mount_dir / "images") == str(canary)  # left as it was, not followed
    assert_no_leak(backend, before, canary)


def test_mount_names_cannot_leave_the_mount_dir(manager, images, canary, dirs):
    before = snapshot(canary)
    for name in ("..", "../canary", "/tmp/x", "a/b", ".hidden", "..\\canary", "x\x00", "\u202eevil",
                 "a" * 200, "", ".pachls-views"):
        with pytest.raises(InvalidName):
            manager.mount("images", mode="rw", name=name)
    assert manager.list() == []
    assert snapshot(canary) == before
    outside = {p.name for p in dirs[0].parent.iterdir()}
    assert not outside & {"x", "tmp", "a", ".hidden"}, outside


def test_odd_names_inside_a_mount(manager, images, backend, presentation):
    """Names the repo refuses are refused by the mount (FUSE) or kept out of the commit (no-FUSE);
    names that are only odd land as themselves, NFC and NFD as two files."""
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    fine = {nfc: b"nfc", nfd: b"nfd", "back\\slash": b"bs", "\uff0e\uff0e\uff0fetc": b"fw", "...": b"dots",
            "\u2024\u2024": b"leaders"}
    for name, raw in fine.items():
        (root / name).write_bytes(raw)
    too_long = "x" * 256
    with pytest.raises(OSError) as info:
        (root / too_long).write_bytes(b"x")
    assert info.value.errno == errno.ENAMETOOLONG
    refused = ["bidi\u202egnp.exe", "tab\tname"]
    if presentation == "fuse":
        for name in refused:
            with pytest.raises(OSError) as info:
                (root / name).write_bytes(b"x")
            assert info.value.errno == errno.EINVAL, name
    else:
        for name in refused:
            (root / name).write_bytes(b"x")
        assert set(manager.changes("images").unsupported) == {"/" + n for n in refused}
        with pytest.raises(InvalidArgument):
            manager.commit("images", "odd")
        for name in refused:
            os.unlink(root / name)
    manager.commit("images", "odd names")
    state = repo_state(backend, "images", "master")
    for name, raw in fine.items():
        assert state["/" + name] == raw, name


@pytest.mark.skipif(os.geteuid() != 0, reason="mode bits protect the store from other users")
def test_root_cannot_write_through_a_read_only_mount_into_the_store(manager, images, backend, presentation):
    manager.mount("images", mode="ro")
    path = manager.mount_dir / "images" / "cats" / "001.png"
    try:
        with open(path, "r+b") as f:
            f.write(b"changed")
    except OSError as exc:
        assert exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    assert backend.get_file("images", "master", "/cats/001.png") == b"cat one"
