"""Nothing stale, nothing by accident, through the REST API of a real Jupyter server: a mount of a
rolled-back branch says so and follows it (``POST /mounts/{name}/follow``), a read-only mount
follows its branch's head at the next mounts listing, a commit takes a chosen subset (``paths``), and
a branch's moves name the commits they left; where the branch changed a path at which a read-write mount
holds a local file its ignore rules keep out of commits, refresh and follow answer 409 ``would_overwrite``
naming the paths (nothing changes) until the request says ``overwrite: true`` (the Python client raises
the same typed error). Responses are checked against ``openapi.yaml``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

from jupyterlab_pachls.pfs.errors import WouldOverwrite


@pytest.fixture(autouse=True)
def no_fuse(monkeypatch):
    """The follow logic is the manager's (tested with and without FUSE in tests/mount); one way here."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")


@pytest.fixture
def backend(pachls_state):
    return pachls_state.backend


@pytest.fixture
def history(backend):
    """``images@master``: first -> second; returns both commits."""
    backend.create_repo("images")
    with backend.commit("images", "master", message="first") as first:
        first.put_files([("/a.txt", b"a"), ("/b.txt", b"b")])
    with backend.commit("images", "master", message="second") as second:
        second.put_files([("/c.txt", b"c")])
    return first.finished, second.finished


@pytest.fixture
def mount_dir(jp_root_dir) -> Path:
    return Path(jp_root_dir) / "pfs"


async def test_a_rolled_back_mount_is_followed_keeping_or_dropping(api, backend, history, mount_dir):
    first, second = history
    status, body = await api("POST", "mounts", {"repo": "images", "mode": "rw"})
    assert status == 201, body
    await asyncio.to_thread((mount_dir / "images" / "mine.txt").write_bytes, b"mine")
    backend.move_branch("images", "master", first.id)

    status, body = await api("GET", "mounts/images")
    assert (body["diverged"], body["behind"], body["head"], body["base"]) == (True, 0, first.id, second.id)
    status, body = await api("POST", "mounts/images/follow", {"pending": "sideways"})
    assert (status, body["error"]) == (400, "invalid_argument")

    status, body = await api("POST", "mounts/images/follow", {"pending": "keep"})
    assert status == 200, body
    assert (body["diverged"], body["base"], body["pending"]) == (False, first.id, 1)
    assert not (mount_dir / "images" / "c.txt").exists()

    backend.move_branch("images", "master", second.id)  # forward again
    status, body = await api("POST", "mounts/images/follow", {"pending": "drop"})
    assert status == 200, body
    assert (body["base"], body["pending"]) == (second.id, 0)
    assert not (mount_dir / "images" / "mine.txt").exists()
    assert (mount_dir / "images" / "c.txt").read_bytes() == b"c"


async def test_a_read_only_mount_follows_its_head_at_the_next_listing(api, backend, history, mount_dir):
    first, second = history
    status, body = await api("POST", "mounts", {"repo": "images"})
    assert status == 201 and body["base"] == second.id, body
    backend.move_branch("images", "master", first.id)
    status, body = await api("GET", "mounts")
    assert body["mounts"][0]["diverged"] is True  # said at once; following starts now
    for _ in range(100):
        status, body = await api("GET", "mounts")
        if body["mounts"][0]["base"] == first.id:
            break
        await asyncio.sleep(0.1)
    assert (body["mounts"][0]["base"], body["mounts"][0]["diverged"]) == (first.id, False)
    assert not (mount_dir / "images" / "c.txt").exists()


async def test_a_commit_of_chosen_paths(api, backend, history, mount_dir):
    first, second = history
    await api("POST", "mounts", {"repo": "images", "mode": "rw"})
    root = mount_dir / "images"
    for name in ("x.txt", "y.txt"):
        await asyncio.to_thread((root / name).write_bytes, name.encode())
    status, body = await api("POST", "mounts/images/commit", {"message": "x only", "paths": ["/x.txt"]})
    assert status == 201, body
    assert body["mount"]["pending"] == 1
    assert [p.path for p in backend.list_dir("images", "master").items] == ["/a.txt", "/b.txt", "/c.txt", "/x.txt"]
    for paths in (["x.txt"], "/y.txt", [3], ["/nope"]):
        status, body = await api("POST", "mounts/images/commit", {"message": "m", "paths": paths})
        assert status == 400, body
    assert len(backend.list_commits("images", "master")) == 3


async def test_moves_name_the_commits_a_rollback_left(api, backend, history):
    first, second = history
    status, body = await api("GET", "repos/images/branches/master/moves")
    assert body == {"moves": [], "left": []}
    backend.move_branch("images", "master", first.id)
    status, body = await api("GET", "repos/images/branches/master/moves")
    assert [c["id"] for c in body["left"]] == [second.id]
    backend.move_branch("images", "master", second.id)  # forward again: nothing is left
    status, body = await api("GET", "repos/images/branches/master/moves")
    assert len(body["moves"]) == 2 and body["left"] == []


async def test_the_python_client_follows_and_commits_chosen_paths(api, backend, history, mount_dir, jp_http_port,
                                                                  jp_base_url, jp_auth_header):
    # ``api`` starts the server listening (pytest-jupyter's http_server_client)
    from jupyterlab_pachls.client.http import ServerClient

    first, second = history
    token = jp_auth_header["Authorization"].split()[-1]
    client = ServerClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token)
    try:
        await asyncio.to_thread(client.mount, "images", rw=True)
        for name in ("x.txt", "y.txt"):
            await asyncio.to_thread((mount_dir / "images" / name).write_bytes, name.encode())
        landed = await asyncio.to_thread(client.commit, "images", "x only", paths=["/x.txt"])
        assert landed.parent == second.id
        backend.move_branch("images", "master", first.id)
        status = await asyncio.to_thread(client.mount_status, "images")
        assert (status.diverged, status.head) == (True, first.id)
        status = await asyncio.to_thread(client.follow, "images", keep=False)
        assert (status.base, status.pending, status.diverged) == (first.id, 0, False)
    finally:
        client.close()


# -- ignored local files are never replaced unasked -------------------------------------------------
CHECKPOINT = "/.ipynb_checkpoints/notes-checkpoint.ipynb"


async def write(path: Path, data: bytes) -> None:
    def run() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    await asyncio.to_thread(run)


async def test_refresh_and_follow_name_the_ignored_files_they_would_overwrite(api, backend, mount_dir):
    backend.create_repo("notes")
    with backend.commit("notes", "master", message="first") as first:
        first.put_file("/notes.ipynb", b"{}")
    status, body = await api("POST", "mounts", {"repo": "notes", "mode": "rw"})
    assert status == 201, body
    checkpoint = mount_dir / "notes" / CHECKPOINT[1:]
    await write(checkpoint, b"my checkpoint")
    with backend.commit("notes", "master", message="theirs, checkpoint included") as theirs:
        theirs.put_file(CHECKPOINT, b"their checkpoint")

    status, body = await api("POST", "mounts/notes/refresh", {})
    assert (status, body["error"], body["details"]["paths"]) == (409, "would_overwrite", [CHECKPOINT]), body
    assert checkpoint.read_bytes() == b"my checkpoint"
    status, body = await api("POST", "mounts/notes/refresh", {"overwrite": "yes"})
    assert (status, body["error"]) == (400, "invalid_argument")
    status, body = await api("GET", "mounts/notes")
    assert (body["base"], body["behind"]) == (first.finished.id, 1)

    status, body = await api("POST", "mounts/notes/follow", {"pending": "keep"})
    assert (status, body["error"]) == (409, "would_overwrite"), body
    status, body = await api("POST", "mounts/notes/follow", {"pending": "keep", "overwrite": ["notes.ipynb"]})
    assert (status, body["error"]) == (400, "invalid_path"), body
    status, body = await api("POST", "mounts/notes/follow", {"pending": "keep", "overwrite": ["/notes.ipynb"]})
    assert (status, body["error"], body["details"]["paths"]) == (409, "would_overwrite", [CHECKPOINT]), body
    # the paths a refusal named: allowed
    status, body = await api("POST", "mounts/notes/follow", {"pending": "keep", "overwrite": [CHECKPOINT]})
    assert (status, body["base"], body["pending"]) == (200, theirs.finished.id, 0), body
    assert checkpoint.read_bytes() == b"their checkpoint"

    await write(checkpoint, b"my checkpoint again")
    backend.move_branch("notes", "master", first.finished.id)  # rolled back: their checkpoint leaves
    status, body = await api("POST", "mounts/notes/refresh")
    assert (status, body["error"]) == (409, "would_overwrite"), body
    status, body = await api("POST", "mounts/notes/refresh", {"overwrite": True})
    assert status == 200 and body["base"] == first.finished.id, body
    assert not checkpoint.exists()


async def test_the_python_client_raises_would_overwrite_and_overwrites_when_asked(api, backend, mount_dir,
                                                                                  jp_http_port, jp_base_url,
                                                                                  jp_auth_header):
    from jupyterlab_pachls.client.http import ServerClient

    backend.create_repo("data")
    with backend.commit("data", "master", message="rules") as first:
        first.put_file("/.pachlsignore", b"*.csv\n")
    token = jp_auth_header["Authorization"].split()[-1]
    client = ServerClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token)
    try:
        await asyncio.to_thread(client.mount, "data", rw=True)
        await write(mount_dir / "data" / "table.csv", b"mine")
        with backend.commit("data", "master", message="theirs") as theirs:
            theirs.put_file("/table.csv", b"theirs")
        with pytest.raises(WouldOverwrite) as refused:
            await asyncio.to_thread(client.refresh, "data")
        assert refused.value.details["paths"] == ["/table.csv"] and refused.value.status == 409
        assert (mount_dir / "data" / "table.csv").read_bytes() == b"mine"
        status = await asyncio.to_thread(client.refresh, "data", overwrite=refused.value.details["paths"])
        assert status.base == theirs.finished.id
        assert (mount_dir / "data" / "table.csv").read_bytes() == b"theirs"
    finally:
        client.close()
