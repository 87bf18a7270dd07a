"""REST API against a real Jupyter server with the extension loaded."""

from __future__ import annotations

import os
import re

import pytest

from jupyterlab_pachls.demo import generate
from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

COMMIT_ID = re.compile(r"^[0-9a-f]{8,}$")


def assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert set(body) == {"error", "message", "details"}, body
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)


async def test_health_reports_local_backend(api, pachls_store):
    status, body = await api("GET", "health")
    assert status == 200
    assert body["backend"]["kind"] == "local"
    assert body["backend"]["connected"] is True
    assert body["backend"]["error"] is None
    assert os.path.samefile(body["store_dir"], pachls_store)
    assert str(pachls_store) in body["backend"]["address"]
    fuse = body["fuse"]
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        assert fuse["available"] is False and fuse["reason"]
    elif os.environ.get("PACHLS_NO_FUSE", "") not in ("", "0", "false", "no"):
        assert fuse["available"] is False and "PACHLS_NO_FUSE" in fuse["reason"]
    else:
        assert isinstance(fuse["available"], bool)
        assert fuse["available"] or fuse["reason"]


async def test_store_is_created_at_load(api, pachls_store):
    assert not pachls_store.exists() or pachls_store.is_dir()
    status, _ = await api("GET", "health")
    assert status == 200
    assert pachls_store.is_dir()


async def test_list_repos_empty_store(api):
    status, body = await api("GET", "repos")
    assert status == 200
    assert body["backend"]["kind"] == "local"
    assert body["repos"] == []


async def test_create_then_list(api):
    status, repo = await api("POST", "repos", {"name": "images", "description": "pictures"})
    assert status == 201, repo
    assert repo["name"] == "images"
    assert repo["description"] == "pictures"

    status, body = await api("GET", "repos")
    assert status == 200
    assert [r["name"] for r in body["repos"]] == ["images"]
    assert body["repos"][0]["description"] == "pictures"
    assert body["repos"][0]["branches"] == []


@pytest.mark.parametrize("name", ["bad name", "bad@name", "bad:name", "", "x" * 300, "../up"])
async def test_create_bad_name_is_400(api, name):
    status, body = await api("POST", "repos", {"name": name})
    assert status == 400, body
    assert body["error"] in ("invalid_name", "invalid_argument")
    assert_error(status, body, 400, body["error"])
    status, listing = await api("GET", "repos")
    assert listing["repos"] == []


async def test_create_bad_name_names_the_problem(api):
    status, body = await api("POST", "repos", {"name": "no spaces allowed"})
    assert_error(status, body, 400, "invalid_name")


async def test_create_without_name_is_400(api):
    status, body = await api("POST", "repos", {"description": "no name"})
    assert_error(status, body, 400, "invalid_argument")
    assert body["details"] == {"field": "name"}


async def test_create_with_invalid_json_is_400(api):
    status, body = await api("POST", "repos", raw=b"{not json")
    assert_error(status, body, 400, "invalid_argument")


async def test_create_with_non_object_body_is_400(api):
    status, body = await api("POST", "repos", ["images"])
    assert_error(status, body, 400, "invalid_argument")


async def test_create_duplicate_is_409(api):
    status, _ = await api("POST", "repos", {"name": "labels"})
    assert status == 201
    status, body = await api("POST", "repos", {"name": "labels"})
    assert_error(status, body, 409, "already_exists")


class TestDemoStore:
    """The server lists what ``jupyterlab_pachls.demo`` wrote, in one request."""

    @pytest.fixture
    def pachls_store(self, pachls_store):
        generate(str(pachls_store))
        return pachls_store

    async def test_repos_with_branches_and_heads(self, api):
        status, body = await api("GET", "repos")
        assert status == 200
        repos = {r["name"]: r for r in body["repos"]}
        assert set(repos) == {"images", "labels"}

        images = repos["images"]
        assert [b["name"] for b in images["branches"]] == ["master"]
        head = images["branches"][0]["head"]
        assert COMMIT_ID.match(head["id"])
        assert head["message"] == "demo data"
        assert head["author"] == "demo"
        assert head["n_files"] == 12

        labels = repos["labels"]
        assert [b["name"] for b in labels["branches"]] == ["master"]

    async def test_sees_commits_made_by_another_process(self, api, pachls_store):
        """A kernel writing to the same store is seen on the next request."""
        import subprocess
        import sys

        code = (
            "import sys\n"
            "from jupyterlab_pachls.pfs import LocalBackend\n"
            "b = LocalBackend(sys.argv[1])\n"
            "with b.commit('labels', 'master', message='round 1', author='ann') as c:\n"
            "    c.put_file('/cats/001.png.json', b'{}')\n"
            "print(c.finished.id)\n"
            "b.close()\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(pachls_store)],
            check=True, capture_output=True, text=True, timeout=120,
        )
        commit_id = out.stdout.strip().splitlines()[-1]
        status, body = await api("GET", "repos")
        assert status == 200
        labels = next(r for r in body["repos"] if r["name"] == "labels")
        assert labels["branches"][0]["head"]["id"] == commit_id
        assert labels["branches"][0]["head"]["message"] == "round 1"


class TestStoreDirTraitlet:
    """``c.PachlsConfig.store_dir`` wins over ``PACHLS_STORE``."""

    @pytest.fixture
    def configured_store(self, tmp_path):
        return tmp_path / "configured"

    @pytest.fixture
    def pachls_config(self, configured_store):
        return {"PachlsConfig": {"store_dir": str(configured_store)}}

    async def test_traitlet_overrides_env(self, api, configured_store, pachls_store):
        status, body = await api("GET", "health")
        assert status == 200
        assert os.path.samefile(body["store_dir"], configured_store)
        assert configured_store.is_dir()
        assert not pachls_store.exists()


class TestUnavailableStore:
    """A store that cannot be opened: the server runs, health says why, data routes answer 503."""

    @pytest.fixture
    def pachls_store(self, pachls_store):
        pachls_store.parent.mkdir(parents=True, exist_ok=True)
        pachls_store.write_text("this is a file, not a store directory")
        return pachls_store

    async def test_health_reports_the_error(self, api):
        status, body = await api("GET", "health")
        assert status == 200
        assert body["backend"]["connected"] is False
        assert body["backend"]["error"]

    async def test_repos_is_503(self, api):
        status, body = await api("GET", "repos")
        assert_error(status, body, 503, "unavailable")
        status, body = await api("POST", "repos", {"name": "images"})
        assert_error(status, body, 503, "unavailable")


async def test_backend_closed_when_extension_stops(api, jp_serverapp, pachls_state):
    assert pachls_state.backend is not None
    app = jp_serverapp.extension_manager.extension_points["jupyterlab_pachls"].app
    await app.stop_extension()
    assert pachls_state.backend is None
    status, body = await api("GET", "repos")
    assert_error(status, body, 503, "unavailable")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_api_route_is_json_404(api, method):
    status, body = await api(method, "no-such-route/below")
    assert_error(status, body, 404, "not_found")
    assert body["details"] == {"path": "no-such-route/below"}
