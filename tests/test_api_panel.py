"""``GET /pachls/api/panel``: what the panel polls, in one request, and the busy 503's ``Retry-After``.

A real Jupyter server with the extension (no-FUSE mounts); every answer is checked against
``openapi.yaml``. The panel answer holds what ``/health``, ``/repos`` and ``/mounts`` answer; one
ETag gives 304 while none of them changed and a new answer as soon as one did; a part that fails
does not hide the others.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import threading

import pytest

from jupyterlab_pachls.client.http import ServerClient, retry_after_seconds
from jupyterlab_pachls.pfs import Unavailable
from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)
from test_api_pachyderm import cluster, switch_to  # noqa: F401  (the package's Pachyderm-API gRPC server)

#: Fail-safe bound for a held commit and for what must happen now: a failing test ends instead of hanging.
SOON = 60


@pytest.fixture
def pachls_config() -> dict:
    # One long thread and no waiting place: a second long operation meets a full pool.
    return {"PachlsConfig": {"long_operation_threads": 1, "long_operation_queue": 0}}


@pytest.fixture
def jp_server_config(jp_server_config, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")  # plain folders: the test writes files, FUSE is not the point
    return jp_server_config


@pytest.fixture
def backend(pachls_state):
    return pachls_state.backend


def commit_file(backend, repo: str, path: str, data: bytes) -> str:
    with backend.commit(repo, "master", message=f"add {path}", author="ann <ann@example.com>") as c:
        c.put_file(path, data)
    return c.finished.id


async def panel(raw_api, etag: str | None = None):
    return await raw_api("GET", "panel", headers={"If-None-Match": etag} if etag else None)


async def test_panel_holds_what_the_three_routes_answer(api, raw_api, backend):
    await asyncio.to_thread(backend.create_repo, "images", "pictures")
    head = await asyncio.to_thread(commit_file, backend, "images", "/a.txt", b"a")
    status, mount = await api("POST", "mounts", {"repo": "images", "mode": "rw"})
    assert status == 201, mount

    response = await panel(raw_api)
    assert response.code == 200
    body = json.loads(response.body)
    assert set(body) == {"health", "repos", "mounts", "errors"}
    assert body["errors"] == {}
    assert body["repos"] == (await api("GET", "repos"))[1]
    assert body["repos"]["repos"][0]["branches"][0]["head"]["id"] == head
    assert body["mounts"] == (await api("GET", "mounts"))[1]
    assert [m["name"] for m in body["mounts"]["mounts"]] == ["images"]
    assert body["health"] == (await api("GET", "health"))[1]
    assert body["health"]["backend"]["connected"] is True


async def test_panel_answers_304_until_a_part_changes(api, raw_api, backend, jp_root_dir):
    await asyncio.to_thread(backend.create_repo, "images")
    first = await panel(raw_api)
    etag = first.headers["ETag"]
    again = await panel(raw_api, etag)
    assert again.code == 304 and again.body == b""

    # A commit changes the repos part.
    head = await asyncio.to_thread(commit_file, backend, "images", "/a.txt", b"a")
    changed = await panel(raw_api, etag)
    assert changed.code == 200 and changed.headers["ETag"] != etag
    body = json.loads(changed.body)
    assert body["repos"]["repos"][0]["branches"][0]["head"]["id"] == head
    etag = changed.headers["ETag"]
    assert (await panel(raw_api, etag)).code == 304

    # A mount changes the mounts part only.
    status, _ = await api("POST", "mounts", {"repo": "images", "mode": "rw"})
    assert status == 201
    changed = await panel(raw_api, etag)
    assert changed.code == 200
    assert [m["name"] for m in json.loads(changed.body)["mounts"]["mounts"]] == ["images"]
    etag = changed.headers["ETag"]

    # A file written into the read-write mount: its pending count shows.
    await asyncio.to_thread((jp_root_dir / "pfs" / "images" / "new.txt").write_bytes, b"new")
    changed = await panel(raw_api, etag)
    assert changed.code == 200
    assert json.loads(changed.body)["mounts"]["mounts"][0]["pending"] == 1


async def test_a_failing_part_does_not_hide_the_others(raw_api, pachls_state, backend, monkeypatch):
    await asyncio.to_thread(backend.create_repo, "images")
    # The mount manager is down: mounts answer 503 on their own route, repos still show.
    monkeypatch.setattr(pachls_state, "mounts", None)
    monkeypatch.setattr(pachls_state, "mounts_error", "the mount folder cannot be made")
    body = json.loads((await panel(raw_api)).body)
    assert body["mounts"] is None
    assert body["errors"]["mounts"]["status"] == 503
    assert body["errors"]["mounts"]["error"] == "unavailable"
    assert "the mount folder cannot be made" in body["errors"]["mounts"]["message"]
    assert [r["name"] for r in body["repos"]["repos"]] == ["images"]
    assert body["health"]["backend"]["connected"] is True
    assert set(body["errors"]) == {"mounts"}
    monkeypatch.undo()

    # The store is closed: repos fail (and health says the store does not answer), mounts still show.
    await asyncio.to_thread(backend.close)
    body = json.loads((await panel(raw_api)).body)
    assert body["repos"] is None
    assert body["errors"]["repos"]["status"] == 503
    assert body["health"]["backend"]["connected"] is False
    assert body["health"]["backend"]["error"] == body["errors"]["repos"]["message"]
    assert body["mounts"] is not None and body["mounts"]["mounts"] == []


async def test_panel_on_a_cluster(raw_api, api, cluster, pachls_state):
    """The same answer through the Pachyderm backend (the real pachyderm_sdk client); the cluster's store
    closing fails the repos part, and health says the store does not answer."""
    served, address = cluster
    backend = await switch_to(api, address, pachls_state)
    await asyncio.to_thread(backend.create_repo, "images")
    first = await panel(raw_api)
    body = json.loads(first.body)
    assert body["errors"] == {} and body["health"]["backend"]["kind"] == "pachyderm"
    assert body["health"]["backend"]["connected"] is True
    assert [r["name"] for r in body["repos"]["repos"]] == ["images"]
    assert (await panel(raw_api, first.headers["ETag"])).code == 304

    head = await asyncio.to_thread(commit_file, backend, "images", "/a.txt", b"a")
    changed = await panel(raw_api, first.headers["ETag"])
    assert changed.code == 200
    assert json.loads(changed.body)["repos"]["repos"][0]["branches"][0]["head"]["id"] == head

    await asyncio.to_thread(served.close)
    body = json.loads((await panel(raw_api)).body)
    assert body["repos"] is None and body["errors"]["repos"]["status"] >= 500
    assert body["health"]["backend"]["connected"] is False
    assert body["mounts"] is not None


@pytest.mark.parametrize("route", ["panel", "repos"])
async def test_if_none_match_is_matched_as_http_says(raw_api, backend, route):
    """A weak tag (a proxy that compresses the body weakens the ETag), a list and ``*`` match; a list
    naming other tags does not."""
    await asyncio.to_thread(backend.create_repo, "images")
    etag = (await raw_api("GET", route)).headers["ETag"]
    for sent, code in ((f"W/{etag}", 304), (f'"other", W/{etag}', 304), (f'"other",{etag}', 304), ("*", 304),
                       ('"other", W/"other"', 200)):
        response = await raw_api("GET", route, headers={"If-None-Match": sent})
        assert response.code == code, sent
        assert response.headers["ETag"] == etag


async def test_panel_names_one_backend_across_a_switch(raw_api, api, cluster, pachls_state, monkeypatch):
    """A backend switch while the panel lists the old store: health names the backend whose listing (or
    failure) the answer carries, not the new one put in place meanwhile."""
    old = pachls_state.backend
    await asyncio.to_thread(old.create_repo, "images")
    list_branches = old.list_branches
    release, entered = threading.Event(), threading.Semaphore(0)

    def held(*args, **kwargs):
        entered.release()
        release.wait(SOON)
        return list_branches(*args, **kwargs)

    monkeypatch.setattr(old, "list_branches", held)
    polled = asyncio.ensure_future(panel(raw_api))
    try:
        assert await asyncio.to_thread(entered.acquire, timeout=SOON), "the panel did not list the old store"
        switching = asyncio.ensure_future(api("PUT", "backend", {"kind": "pachyderm", "pachd_address": cluster[1]}))
        for _ in range(SOON * 20):  # until the new backend is in place (the old one's close may wait for the listing)
            if pachls_state.backend is not old:
                break
            await asyncio.sleep(0.05)
        assert pachls_state.backend is not old and pachls_state.backend.kind == "pachyderm"
    finally:
        release.set()
    body = json.loads((await asyncio.wait_for(polled, SOON)).body)
    assert (await asyncio.wait_for(switching, SOON))[0] == 200
    assert body["health"]["backend"]["kind"] == old.kind == "local"
    assert body["health"]["backend"]["address"] == old.address
    if body["repos"] is not None:
        assert body["repos"]["backend"]["kind"] == "local"
        assert [r["name"] for r in body["repos"]["repos"]] == ["images"]


@pytest.fixture
def held_finish(backend, monkeypatch):
    """Every ``finish_commit`` of the server's store waits for ``release``; ``entered`` counts them."""
    finish = backend.finish_commit
    release = threading.Event()
    entered = threading.Semaphore(0)

    def held(commit, **kwargs):
        entered.release()
        release.wait(SOON)
        return finish(commit, **kwargs)

    monkeypatch.setattr(backend, "finish_commit", held)
    yield release, entered
    release.set()


async def test_busy_503_carries_retry_after(api, raw_api, backend, held_finish, jp_root_dir, jp_http_port,
                                           jp_base_url, jp_auth_header):
    release, entered = held_finish
    for name in ("one", "two"):
        await asyncio.to_thread(backend.create_repo, name)
        status, body = await api("POST", "mounts", {"repo": name, "mode": "rw"})
        assert status == 201, body
        await asyncio.to_thread((jp_root_dir / "pfs" / name / "a.txt").write_bytes, b"a")
    running = asyncio.ensure_future(api("POST", "mounts/one/commit", {"message": "first"}))
    assert await asyncio.to_thread(entered.acquire, timeout=SOON), "the commit did not reach its finish"

    refused = await asyncio.wait_for(raw_api("POST", "mounts/two/commit", {"message": "second"}), SOON)
    assert refused.code == 503
    assert json.loads(refused.body)["details"]["reason"] == "busy"
    assert int(refused.headers["Retry-After"]) >= 1
    # The Python client says when to ask again.
    token = jp_auth_header["Authorization"].split()[-1]
    client = ServerClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token)
    try:
        with pytest.raises(Unavailable) as caught:
            await asyncio.to_thread(client.request, "POST", "mounts/two/commit", body={"message": "second"})
    finally:
        client.close()
    assert caught.value.details["reason"] == "busy"
    assert caught.value.details["retry_after"] == int(refused.headers["Retry-After"])
    assert f"retry in {refused.headers['Retry-After']} s" in str(caught.value)
    # What the panel polls still answers, with no Retry-After of its own.
    polled = await asyncio.wait_for(panel(raw_api), SOON)
    assert polled.code == 200 and "Retry-After" not in polled.headers

    release.set()
    status, body = await asyncio.wait_for(running, SOON)
    assert status == 201, body
    # Other 503s (the store is not available) carry no Retry-After: waiting a few seconds is no cure.
    await asyncio.to_thread(backend.close)
    other = await raw_api("GET", "repos")
    assert other.code == 503 and "Retry-After" not in other.headers


def test_retry_after_reads_delay_seconds_and_http_dates():
    soon = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=90),
                                       usegmt=True)
    assert retry_after_seconds("5") == 5
    assert 80 <= retry_after_seconds(soon) <= 91
    assert retry_after_seconds("Sat, 01 Jan 2000 00:00:00 GMT") == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
