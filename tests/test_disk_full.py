"""Disk full during a commit: the store (and the mounts' state beside it) on a small tmpfs.

A staged file is committed while the filesystem has less room than the commit needs: the REST API
answers a typed error (503 ``unavailable``, ``details.reason == "disk_full"``, with the OS message),
nothing lands, the store passes fsck, the stage is intact; once space is freed the same commit
succeeds. Skipped where this process cannot mount a tmpfs (it needs root or CAP_SYS_ADMIN).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from jupyterlab_pachls.pfs import LocalBackend

TMPFS_MB = 12
STAGED_MB = 3
FREE_KB = 512  # what the filler leaves free: far less than the staged file


@pytest.fixture
def small_fs(tmp_path):
    point = tmp_path / "small"
    point.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0755", "pachls-disk-full",
                               str(point)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


@pytest.fixture
def pachls_store(small_fs, presentation, monkeypatch):
    store = small_fs / "store"  # the mounts' state (FUSE stages) lands beside it: small_fs / "mounts"
    monkeypatch.setenv("PACHLS_STORE", str(store))
    return store


def fill(point: Path, leave: int) -> Path:
    """A file taking all but ``leave`` bytes of the filesystem at ``point``."""
    filler = point / f"filler-{uuid.uuid4().hex[:6]}"
    st = os.statvfs(point)
    size = st.f_bavail * st.f_frsize - leave
    with open(filler, "wb") as out:
        chunk = b"\0" * (1 << 20)
        while size > 0:
            try:
                size -= out.write(chunk[:min(size, len(chunk))])
            except OSError:
                break
    return filler


async def test_commit_on_a_full_disk(api, jp_root_dir, pachls_store, small_fs, presentation):
    status, _ = await api("POST", "repos", {"name": "data"})
    assert status == 201
    status, mount = await api("POST", "mounts", {"repo": "data", "mode": "rw"})
    assert status == 201 and mount["presentation"] == presentation
    root = Path(mount["mountpoint"])
    await asyncio.to_thread((root / "small.txt").write_bytes, b"fits")
    status, body = await api("POST", "mounts/data/commit", {"message": "fits"})
    assert status == 201, body
    head = body["commit"]["id"]

    big = os.urandom(STAGED_MB << 20)
    await asyncio.to_thread((root / "big.bin").write_bytes, big)
    await asyncio.to_thread((root / "small.txt").write_bytes, b"changed")
    filler = await asyncio.to_thread(fill, small_fs, FREE_KB << 10)
    try:
        status, body = await api("POST", "mounts/data/commit", {"message": "does not fit"})
        print(status, body)
        assert status == 503, body
        assert body["error"] == "unavailable"
        assert body["details"]["reason"] == "disk_full"
        assert "No space left on device" in body["message"]

        status, branch = await api("GET", "repos/data/branches/master")
        assert status == 200 and branch["head"]["id"] == head
        status, changes = await api("GET", "mounts/data/changes")
        assert status == 200
        assert {c["path"]: c["change"] for c in changes["changes"]} == {"/big.bin": "added",
                                                                       "/small.txt": "modified"}
        assert (await asyncio.to_thread((root / "big.bin").read_bytes)) == big
        status, mounts = await api("GET", "mounts")
        assert [(m["name"], m["state"], m["base"]) for m in mounts["mounts"]] == [("data", "mounted", head)]
        store = LocalBackend(pachls_store)
        try:
            assert store.fsck(verify_content=True).problems == []
            assert store.open_commits("data") == []
        finally:
            store.close()
    finally:
        os.unlink(filler)

    status, body = await api("POST", "mounts/data/commit", {"message": "fits now"})
    assert status == 201, body
    assert body["commit"]["parent"] == head and body["mount"]["pending"] == 0
    status, raw = await api("GET", "mounts/data/changes")
    assert raw["changes"] == []
    store = LocalBackend(pachls_store)
    try:
        assert store.get_file("data", "master", "/big.bin") == big
        assert store.get_file("data", "master", "/small.txt") == b"changed"
        report = store.fsck(verify_content=True)
        assert report.problems == []
        print(f"disk_full: {presentation}: 503 on a full disk, retry landed; fsck ok, "
              f"{report.unreferenced_blobs} unreferenced blobs")
    finally:
        store.close()


# no FUSE: its stage of thousands of files would fill this tmpfs by itself (a page per file)
@pytest.mark.parametrize("presentation", ["no-fuse"], indirect=True)
async def test_rows_do_not_fit(api, pachls_store, small_fs, presentation):
    """Thousands of files with one content: the blob fits, SQLite's rows do not (SQLITE_FULL)."""
    assert (await api("POST", "repos", {"name": "data"}))[0] == 201
    status, mount = await api("POST", "mounts", {"repo": "data", "mode": "rw"})
    root = Path(mount["mountpoint"])

    def stage() -> list[str]:
        paths = []
        for i in range(3000):
            rel = f"d{i % 30:02d}/{'n' * 150}-{i:05d}.txt"
            (root / rel).parent.mkdir(exist_ok=True)
            (root / rel).write_bytes(b"same")
            paths.append("/" + rel)
        return paths

    paths = await asyncio.to_thread(stage)
    filler = await asyncio.to_thread(fill, small_fs, 64 << 10)
    try:
        status, body = await api("POST", "mounts/data/commit", {"message": "too many rows"})
        print(status, body)
        assert status == 503 and body["details"]["reason"] == "disk_full", body
        store = LocalBackend(pachls_store)
        try:
            assert [b.head for b in store.list_branches("data")] in ([], [None])  # nothing landed
            assert store.fsck().problems == [] and store.open_commits("data") == []
        finally:
            store.close()
        status, changes = await api("GET", "mounts/data/changes")
        assert len(changes["changes"]) == len(paths)
    finally:
        os.unlink(filler)
    status, body = await api("POST", "mounts/data/commit", {"message": "fits now"})
    assert status == 201, body
    assert body["commit"]["n_files"] == len(paths) and body["mount"]["pending"] == 0


@pytest.fixture
def small_mount_dir(small_fs, pachls_store, monkeypatch) -> Path:
    """The mount directory on the small filesystem too (set before the server starts)."""
    mount_dir = small_fs / "pfs"
    monkeypatch.setenv("PACHLS_MOUNT_DIR", str(mount_dir))
    return mount_dir


@pytest.mark.parametrize("presentation", ["no-fuse"], indirect=True)  # a FUSE mount copies nothing
async def test_mount_on_a_full_disk(small_mount_dir, api, pachls_store, small_fs, presentation):
    """A no-FUSE read-write mount copies the base commit into the mount dir: on a full disk the mount
    fails with the typed error, leaves no mount and no half-built directory, and works once space is freed."""
    mount_dir = small_mount_dir
    store = LocalBackend(pachls_store)
    try:
        store.create_repo("data")
        with store.commit("data", "master", message="big") as c:
            c.put_file("/big.bin", os.urandom(STAGED_MB << 20))
    finally:
        store.close()
    filler = await asyncio.to_thread(fill, small_fs, FREE_KB << 10)
    try:
        status, body = await api("POST", "mounts", {"repo": "data", "mode": "rw"})
        assert status == 503 and body["details"]["reason"] == "disk_full", body
        assert "No space left on device" in body["message"]
        status, mounts = await api("GET", "mounts")
        assert mounts["mounts"] == []
        views = mount_dir / ".pachls-views"
        assert [p.name for p in mount_dir.iterdir() if p != views] == []  # no mount point, no half-built copy
        assert not views.exists() or list(views.iterdir()) == []
    finally:
        os.unlink(filler)
    status, body = await api("POST", "mounts", {"repo": "data", "mode": "rw"})
    assert status == 201, body
    assert (mount_dir / "data/big.bin").stat().st_size == STAGED_MB << 20
