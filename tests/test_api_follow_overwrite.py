"""Nothing lost on refresh or follow, through the REST API of a real Jupyter server and the Python
client: where the branch changed a path at which a read-write mount holds a local file its ignore rules
keep out of commits, ``POST /mounts/{name}/refresh`` and ``/follow`` answer 409 ``would_overwrite``
naming the paths (nothing changes) until the request says ``overwrite: true``; the Python client raises
the same typed error. Responses are checked against ``openapi.yaml``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyterlab_pachls.pfs.errors import WouldOverwrite
from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

CHECKPOINT = "/.ipynb_checkpoints/notes-checkpoint.ipynb"


@pytest.fixture(autouse=True)
def no_fuse(monkeypatch):
    """The manager's logic is tested with and without FUSE in tests/mount; one way here."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")


@pytest.fixture
def backend(pachls_state):
    return pachls_state.backend


@pytest.fixture
def mount_dir(jp_root_dir) -> Path:
    return Path(jp_root_dir) / "pfs"


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
    status, body = await api("POST", "mounts/notes/follow", {"pending": "keep", "overwrite": True})
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
        status = await asyncio.to_thread(client.refresh, "data", overwrite=True)
        assert status.base == theirs.finished.id
        assert (mount_dir / "data" / "table.csv").read_bytes() == b"theirs"
    finally:
        client.close()
