"""Mount routes on a real Jupyter server: mount ``images@master`` read-only and
``labels@master`` read-write, write into the labels folder, see the pending changes, commit
them as one commit — with FUSE (when this machine allows it) and in the forced no-FUSE mode.
Every response is checked against ``openapi.yaml``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from jupyter_server.auth import IdentityProvider, User

from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

USER = "Ann Labeler"


class NamedUserProvider(IdentityProvider):
    """Jupyter's token identity, with a fixed name instead of a random anonymous one."""

    def generate_anonymous_user(self, handler):
        return User(username="ann-uid", name=USER, display_name=USER)


@pytest.fixture
def jp_server_config(jp_server_config, presentation):
    config = dict(jp_server_config)
    config["ServerApp"] = {**config["ServerApp"], "identity_provider_class": NamedUserProvider}
    return config


@pytest.fixture
def backend(pachls_state):
    return pachls_state.backend


@pytest.fixture
def data(backend):
    """``images@master`` with a few files, empty repo ``labels``; returns the images head id."""
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="ann") as c:
        c.put_files([("/cats/001.png", b"png-1"), ("/cats/002.png", b"png-2"), ("/dogs/001.png", b"dog")])
    backend.create_repo("labels")
    return c.finished.id


@pytest.fixture
def mount_dir(jp_root_dir) -> Path:
    return Path(jp_root_dir) / "pfs"


def read(path: Path) -> bytes:
    return path.read_bytes()


async def in_thread(fn, *args):
    return await asyncio.to_thread(fn, *args)


def write_files(root: Path, files: dict[str, bytes | None]) -> None:
    for rel, content in files.items():
        target = root / rel
        if content is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


async def nothing_mounted(api, mount_dir: Path) -> None:
    status, body = await api("GET", "mounts")
    assert status == 200 and body["mounts"] == [], body
    assert not mount_dir.exists() or not [p for p in mount_dir.iterdir() if not p.name.startswith(".")]


def assert_error(status, body, expected_status, code=None):
    assert status == expected_status, body
    assert set(body) == {"error", "message", "details"}
    if code is not None:
        assert body["error"] == code, body


# -- the whole story -------------------------------------------------------------------------------
async def test_mount_ro_and_rw_then_commit_once(api, data, backend, mount_dir, presentation):
    status, body = await api("GET", "mounts")
    assert status == 200
    assert body["mount_dir"] == str(mount_dir)
    assert body["fuse"] is (presentation == "fuse")
    assert body["mounts"] == []

    status, images = await api("POST", "mounts", {"repo": "images", "branch": "master", "mode": "ro"})
    assert status == 201, images
    assert images["name"] == "images" and images["mode"] == "ro" and images["state"] == "mounted"
    assert images["presentation"] == presentation and images["base"] == data
    assert images["mountpoint"] == str(mount_dir / "images")
    assert await in_thread(read, mount_dir / "images" / "cats" / "001.png") == b"png-1"

    status, labels = await api("POST", "mounts", {"repo": "labels", "mode": "rw"})
    assert status == 201, labels
    assert labels["name"] == "labels" and labels["mode"] == "rw" and labels["base"] is None

    # Label-Studio-like writes: many small files written, rewritten, one deleted.
    root = mount_dir / "labels"
    await in_thread(write_files, root, {f"cats/{i:03d}.png.json": b'{"v": 1}' for i in range(1, 21)})
    await in_thread(write_files, root, {"cats/001.png.json": b'{"v": 2}', "cats/020.png.json": None})
    status, changes = await api("GET", "mounts/labels/changes")
    assert status == 200
    assert changes["counts"] == {"added": 19, "modified": 0, "deleted": 0}
    assert {c["path"] for c in changes["changes"]} == {f"/cats/{i:03d}.png.json" for i in range(1, 20)}
    status, body = await api("GET", "mounts/labels")
    assert body["pending"] == 19

    status, body = await api("POST", "mounts/labels/commit",
                             {"message": "round 1", "provenance": [f"images@{data}"]})
    assert status == 201, body
    commit = body["commit"]
    assert commit["message"] == "round 1" and commit["author"] == f"{USER} <ann-uid@localhost>"
    assert [(p["repo"], p["commit"]) for p in commit["provenance"]] == [("images", data)]
    assert body["mount"]["pending"] == 0 and body["mount"]["base"] == commit["id"]

    # Exactly one commit, holding exactly the final state.
    history = backend.list_commits("labels", "master")
    assert [c.id for c in history] == [commit["id"]]
    files = {info.path: backend.get_file("labels", "master", info.path)
             for info in backend.walk("labels", "master") if not info.is_dir}
    assert files == {f"/cats/{i:03d}.png.json": (b'{"v": 2}' if i == 1 else b'{"v": 1}') for i in range(1, 20)}

    status, changes = await api("GET", "mounts/labels/changes")
    assert changes["changes"] == []
    status, body = await api("POST", "mounts/labels/commit", {"message": "again"})
    assert_error(status, body, 400, "invalid_argument")
    assert len(backend.list_commits("labels", "master")) == 1

    status, body = await api("GET", "mounts")
    assert [m["name"] for m in body["mounts"]] == ["images", "labels"]
    for name in ("images", "labels"):
        status, body = await api("DELETE", f"mounts/{name}")
        assert status == 204, body
    await nothing_mounted(api, mount_dir)


async def test_discard(api, data, mount_dir, presentation):
    status, _ = await api("POST", "mounts", {"repo": "images", "mode": "rw", "name": "work"})
    assert status == 201
    await in_thread(write_files, mount_dir / "work", {"new.txt": b"n", "cats/001.png": b"changed"})
    status, body = await api("GET", "mounts/work")
    assert body["pending"] == 2
    status, body = await api("POST", "mounts/work/discard")
    assert status == 200, body
    assert body["pending"] == 0
    assert not (mount_dir / "work" / "new.txt").exists()
    assert await in_thread(read, mount_dir / "work" / "cats" / "001.png") == b"png-1"


async def test_refresh_follows_the_branch(api, data, backend, mount_dir, presentation):
    status, body = await api("POST", "mounts", {"repo": "images"})
    assert status == 201
    with backend.commit("images", "master", message="more") as c:
        c.put_file("/birds/001.png", b"bird")
    status, body = await api("GET", "mounts/images")
    assert body["behind"] == 1 and body["base"] == data
    status, body = await api("POST", "mounts/images/refresh")
    assert status == 200, body
    assert body["base"] == c.finished.id and body["behind"] == 0
    assert await in_thread(read, mount_dir / "images" / "birds" / "001.png") == b"bird"


async def test_commit_conflict_keeps_the_stage(api, data, backend, mount_dir, presentation):
    status, _ = await api("POST", "mounts", {"repo": "images", "mode": "rw"})
    assert status == 201
    await in_thread(write_files, mount_dir / "images", {"cats/001.png": b"mine"})
    with backend.commit("images", "master", message="theirs") as c:
        c.put_file("/cats/001.png", b"theirs")
    status, body = await api("POST", "mounts/images/commit", {"message": "mine"})
    assert_error(status, body, 409, "conflict")
    assert body["details"]["paths"] == ["/cats/001.png"]
    status, body = await api("GET", "mounts/images/changes")
    assert [c["path"] for c in body["changes"]] == ["/cats/001.png"]
    assert backend.inspect_branch("images", "master").head.id == c.finished.id


async def test_names_and_commit_mounts(api, data, backend, presentation):
    backend.create_branch("images", "dev", head="master")
    status, body = await api("POST", "mounts", {"repo": "images", "branch": "dev"})
    assert status == 201 and body["name"] == "images_dev"
    status, body = await api("POST", "mounts", {"repo": "images", "ref": data})
    assert status == 201, body
    assert body["name"] == f"images_{data[:8]}" and body["commit"] == data and body["mode"] == "ro"
    status, body = await api("POST", "mounts", {"repo": "images", "ref": "dev", "name": "again.dev"})
    assert status == 201 and body["branch"] == "dev"


# -- refusals: clear 4xx, nothing changed ---------------------------------------------------------
async def test_double_mount_is_409(api, data, mount_dir, presentation):
    status, _ = await api("POST", "mounts", {"repo": "images"})
    assert status == 201
    for payload in ({"repo": "images"}, {"repo": "labels", "mode": "rw", "name": "images"}):
        status, body = await api("POST", "mounts", payload)
        assert_error(status, body, 409, "already_exists")
    status, body = await api("GET", "mounts")
    assert [(m["name"], m["repo"]) for m in body["mounts"]] == [("images", "images")]


@pytest.mark.parametrize(
    "payload,code,error",
    [
        ({}, 400, "invalid_argument"),
        ({"repo": ""}, 400, "invalid_argument"),
        ({"repo": "../images"}, 400, "invalid_name"),
        ({"repo": "/etc"}, 400, "invalid_name"),
        ({"repo": "images", "mode": "rx"}, 400, "invalid_argument"),
        ({"repo": "images", "name": ".."}, 400, "invalid_name"),
        ({"repo": "images", "name": "../escape"}, 400, "invalid_name"),
        ({"repo": "images", "name": "a/b"}, 400, "invalid_name"),
        ({"repo": "images", "name": ".hidden"}, 400, "invalid_name"),
        ({"repo": "images", "name": "a\x00b"}, 400, "invalid_name"),
        ({"repo": "images", "name": "/abs"}, 400, "invalid_name"),
        ({"repo": "images", "branch": "../x"}, 400, "invalid_name"),
        ({"repo": "images", "ref": "master^1"}, 400, "invalid_argument"),
        ({"repo": "images", "ref": "master", "branch": "master"}, 400, "invalid_argument"),
        ({"repo": "images", "commit": "xyz"}, 400, "invalid_argument"),
        ({"repo": "images", "colour": "red"}, 400, "invalid_argument"),
        ({"repo": "nope"}, 404, "not_found"),
        ({"repo": "images", "branch": "nope"}, 404, "not_found"),
        ({"repo": "images", "ref": "0" * 32}, 404, "not_found"),
    ],
)
async def test_bad_mount_request(api, data, mount_dir, presentation, payload, code, error):
    status, body = await api("POST", "mounts", payload)
    assert_error(status, body, code, error)
    await nothing_mounted(api, mount_dir)


@pytest.mark.parametrize("method,route", [("GET", ""), ("DELETE", ""), ("POST", "/refresh"),
                                          ("GET", "/changes"), ("POST", "/commit"), ("POST", "/discard")])
async def test_unknown_mount_is_404(api, data, presentation, method, route):
    body = {"message": "m"} if route == "/commit" else None
    status, body = await api(method, f"mounts/nope{route}", body)
    assert_error(status, body, 404, "not_found")


async def test_read_only_mount_refuses_commit_and_discard(api, data, backend, presentation):
    status, _ = await api("POST", "mounts", {"repo": "images"})
    assert status == 201
    status, body = await api("POST", "mounts/images/commit", {"message": "m"})
    assert_error(status, body, 400, "invalid_argument")
    status, body = await api("POST", "mounts/images/discard")
    assert_error(status, body, 400, "invalid_argument")
    assert len(backend.list_commits("images", "master")) == 1


@pytest.mark.parametrize(
    "payload",
    [{}, {"message": ""}, {"message": "   "}, {"message": 5}, {"message": "m", "provenance": "images"},
     {"message": "m", "provenance": ["images"]}, {"message": "m", "provenance": ["images@a b"]},
     {"message": "m", "provenance": [{"repo": "images"}]}, {"message": "m", "author": "mallory"}],
)
async def test_bad_commit_request_keeps_the_stage(api, data, backend, mount_dir, presentation, payload):
    status, _ = await api("POST", "mounts", {"repo": "labels", "mode": "rw"})
    assert status == 201
    await in_thread(write_files, mount_dir / "labels", {"a.json": b"{}"})
    status, body = await api("POST", "mounts/labels/commit", payload)
    assert status == 400, body
    assert body["error"] in ("invalid_argument", "parse_error")
    status, body = await api("GET", "mounts/labels")
    assert body["pending"] == 1
    assert backend.list_branches("labels") == []


async def test_unmount_with_pending_changes(api, data, mount_dir, presentation):
    status, _ = await api("POST", "mounts", {"repo": "labels", "mode": "rw"})
    await in_thread(write_files, mount_dir / "labels", {"a.json": b"{}"})
    status, body = await api("DELETE", "mounts/labels")
    assert_error(status, body, 409, "conflict")
    status, body = await api("DELETE", "mounts/labels", params={"discard": "maybe"})
    assert_error(status, body, 400, "invalid_argument")
    status, body = await api("GET", "mounts/labels")
    assert status == 200 and body["pending"] == 1
    status, body = await api("DELETE", "mounts/labels", params={"discard": "true"})
    assert status == 204
    await nothing_mounted(api, mount_dir)


async def test_mounted_repo_cannot_be_deleted_nor_the_backend_switched(api, data, backend, pachls_state,
                                                                       presentation):
    status, _ = await api("POST", "mounts", {"repo": "images"})
    assert status == 201
    status, body = await api("DELETE", "repos/images")
    assert_error(status, body, 409, "conflict")
    assert body["details"]["mounts"] == ["images"]
    old = pachls_state.backend
    status, body = await api("PUT", "backend", {"kind": "local"})
    assert_error(status, body, 409, "conflict")
    assert pachls_state.backend is old
    assert backend.inspect_repo("images").name == "images"


async def test_oversized_commit_message_is_413(api, data, mount_dir, presentation):
    status, _ = await api("POST", "mounts", {"repo": "labels", "mode": "rw"})
    await in_thread(write_files, mount_dir / "labels", {"a.json": b"{}"})
    status, body = await api("POST", "mounts/labels/commit", {"message": "m" * (1 << 20)})
    assert_error(status, body, 413, "payload_too_large")
    status, body = await api("GET", "mounts/labels")
    assert body["pending"] == 1


async def test_manager_closed_when_extension_stops(api, data, jp_serverapp, pachls_state, mount_dir,
                                                   presentation):
    status, body = await api("POST", "mounts", {"repo": "images"})
    assert status == 201
    app = jp_serverapp.extension_manager.extension_points["jupyterlab_pachls"].app
    await app.stop_extension()
    assert pachls_state.mounts is None
    with open("/proc/mounts") as f:
        assert str(mount_dir / "images") not in f.read()
    status, body = await api("GET", "mounts")
    assert_error(status, body, 503, "unavailable")


class TestMountDirConfig:
    @pytest.fixture
    def pachls_config(self, tmp_path):
        return {"PachlsConfig": {"mount_dir": str(tmp_path / "configured-pfs")}}

    async def test_traitlet(self, api, data, tmp_path, presentation):
        status, body = await api("GET", "mounts")
        assert body["mount_dir"] == str(tmp_path / "configured-pfs")
        status, body = await api("POST", "mounts", {"repo": "images"})
        assert status == 201
        assert body["mountpoint"] == str(tmp_path / "configured-pfs" / "images")
        assert (tmp_path / "configured-pfs" / "images" / "dogs" / "001.png").read_bytes() == b"dog"


class TestMountDirEnv:
    @pytest.fixture
    def presentation(self, monkeypatch, tmp_path):
        monkeypatch.setenv("PACHLS_NO_FUSE", "1")
        monkeypatch.setenv("PACHLS_MOUNT_DIR", str(tmp_path / "env-pfs"))
        return "no-fuse"

    async def test_env(self, api, tmp_path):
        status, body = await api("GET", "mounts")
        assert body["mount_dir"] == str(tmp_path / "env-pfs") and body["fuse"] is False
        assert body["fuse_reason"]
