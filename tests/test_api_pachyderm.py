"""The main REST flows on the Pachyderm backend: the server is switched (PUT /backend) to the
package's Pachyderm-API gRPC server, which the real ``pachyderm_sdk`` client talks to."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from jupyterlab_pachls.client import ServerClient
from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.server import make_server
from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)


@pytest.fixture
def pachls_config() -> dict:
    """Who writes history here (commits and rollbacks need a name and an email)."""
    return {"PachlsConfig": {"user_name": "Ann Labeler", "user_email": "ann@example.com"}}


@pytest.fixture
def cluster(tmp_path):
    served = LocalBackend(tmp_path / "served-store")
    server, port = make_server(served, "127.0.0.1:0")
    try:
        yield served, f"grpc://127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()
        served.close()


async def switch_to(api, address: str, pachls_state):
    status, body = await api("PUT", "backend", {"kind": "pachyderm", "pachd_address": address})
    assert status == 200 and body["kind"] == "pachyderm", body
    return pachls_state.backend


async def make_history(api, cluster, pachls_state) -> list[str]:
    """Switch the server to the cluster, then, through its (Pachyderm) backend: 5 commits on images@master."""
    backend = await switch_to(api, cluster[1], pachls_state)
    backend.create_repo("images")
    ids = []
    for i in range(5):
        with backend.commit("images", "master", message=f"c{i}", author="ann") as c:
            c.put_files([(f"/d/{i}.txt", str(i).encode()), ("/latest.txt", f"v{i}".encode())])
        ids.append(c.finished.id)
    return ids


async def test_listing_history_and_commits(api, cluster, pachls_state):
    history = await make_history(api, cluster, pachls_state)
    status, body = await api("GET", "repos")
    assert status == 200 and body["backend"]["kind"] == "pachyderm"
    [images] = [r for r in body["repos"] if r["name"] == "images"]
    master = {b["name"]: b for b in images["branches"]}["master"]
    assert master["head"]["id"] == history[-1]

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"before": cursor} if cursor else {})}
        status, page = await api("GET", "repos/images/branches/master/commits", params=params)
        assert status == 200, page
        seen += [c["id"] for c in page["commits"] if c["origin"] != "AUTO"]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(history))

    status, body = await api("GET", "repos/images/commits/master^1")
    assert status == 200 and body["id"] == history[-2] and body["message"] == "c3"


async def test_files_download_and_diff(api, raw_api, cluster, pachls_state):
    history = await make_history(api, cluster, pachls_state)
    status, page = await api("GET", "repos/images/commits/master/files", params={"path": "/d", "limit": 3})
    assert status == 200
    assert [i["path"] for i in page["items"]] == ["/d/0.txt", "/d/1.txt", "/d/2.txt"]
    status, page = await api("GET", "repos/images/commits/master/files",
                             params={"path": "/d", "limit": 3, "after": page["next"]})
    assert [i["path"] for i in page["items"]] == ["/d/3.txt", "/d/4.txt"] and page["next"] is None

    response = await raw_api("GET", f"repos/images/commits/{history[1]}/file?path=/latest.txt")
    assert response.code == 200 and response.body == b"v1"
    assert response.headers["Content-Length"] == "2"
    assert response.headers["Content-Disposition"].startswith("attachment")

    status, diff = await api("GET", "repos/images/diff", params={"from": history[0], "to": history[2]})
    assert status == 200
    assert {(c["path"], c["change"]) for c in diff["changes"]} == {
        ("/d/1.txt", "added"), ("/d/2.txt", "added"), ("/latest.txt", "modified")}


async def test_rollback_and_errors(api, cluster, pachls_state):
    history = await make_history(api, cluster, pachls_state)
    status, body = await api("PUT", "repos/images/branches/master/head",
                             {"commit": history[1], "expected_head": history[-1]})
    assert status == 200, body
    assert body["head"]["id"] == history[1]
    status, moves = await api("GET", "repos/images/branches/master/moves")
    assert moves["moves"][0]["new_head"] == history[1]
    status, body = await api("PUT", "repos/images/branches/master/head",
                             {"commit": history[2], "expected_head": history[-1]})
    assert status == 409 and body["error"] == "conflict"
    status, body = await api("GET", "repos/nope")
    assert status == 404 and body["error"] == "not_found"
    status, body = await api("GET", "repos/images/commits/master/file", params={"path": "/nope"})
    assert status == 404 and body["error"] == "not_found"
    status, body = await api("POST", "repos", {"name": "images"})
    assert status == 409 and body["error"] == "already_exists"
    status, body = await api("DELETE", "repos/images")
    assert status == 204
    status, body = await api("GET", "repos/images")
    assert status == 404


async def test_cluster_going_away_is_503(api, cluster, pachls_state):
    served, address = cluster
    await switch_to(api, address, pachls_state)
    # The served store closes: the cluster answers, but with errors -> JSON, not a crash.
    status, body = await api("GET", "health")
    assert body["backend"]["connected"] is True
    served.close()
    status, body = await api("GET", "repos")
    assert status >= 500, body
    assert set(body) == {"error", "message", "details"}
    status, body = await api("GET", "health")
    assert status == 200 and body["backend"]["connected"] is False and body["backend"]["error"]


async def test_wait_for_commits_long_poll(api, cluster, pachls_state, jp_http_port, jp_base_url, jp_auth_header):
    """GET .../wait answers with the commits that landed after ``after``, at once or when one lands; the
    Python API's subscribe() over the same route sees each commit once."""
    history = await make_history(api, cluster, pachls_state)
    backend = pachls_state.backend
    route = "repos/images/branches/master/wait"
    status, body = await api("GET", route, params={"after": history[2], "timeout": 0})
    assert status == 200 and [c["id"] for c in body["commits"]] == history[3:] and body["after"] == history[4]
    status, body = await api("GET", route, params={"timeout": 0})  # from the head now: nothing yet
    assert (status, body) == (200, {"commits": [], "after": history[4]})

    def land(n: int) -> str:
        with backend.commit("images", "master", message=f"late {n}", author="bo") as c:
            c.put_file(f"/late/{n}.txt", b"late")
        return c.finished.id

    waiting = asyncio.ensure_future(api("GET", route, params={"after": history[4], "timeout": 100}))
    late = await asyncio.to_thread(land, 1)
    status, body = await waiting
    assert status == 200 and [c["id"] for c in body["commits"]] == [late]
    assert body["commits"][0]["branch"] == "master" and body["after"] == late

    assert (await api("GET", route, params={"after": "master^1"}))[0] == 400
    assert (await api("GET", route, params={"timeout": 301}))[0] == 400
    assert (await api("GET", "repos/nosuch/branches/master/wait", params={"timeout": 0}))[0] == 404

    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    client = ServerClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token)

    def follow() -> list[str]:
        rounds = client.subscribe("images@master", after=history[3], timeout=60)
        seen = [next(rounds).id, next(rounds).id]  # landed already
        landing = threading.Thread(target=land, args=(2,))
        landing.start()
        seen.append(next(rounds).message)  # long-polled
        landing.join()
        rounds.close()
        return seen

    assert await asyncio.to_thread(follow) == [history[4], late, "late 2"]


async def test_wait_on_a_branch_without_commits_yet(api, cluster, pachls_state):
    """Following a branch before its first commit: the cursor is empty, and the first commit is new."""
    backend = await switch_to(api, cluster[1], pachls_state)
    backend.create_repo("labels")
    route = "repos/labels/branches/round-1/wait"
    status, body = await api("GET", route, params={"timeout": 0})
    assert (status, body) == (200, {"commits": [], "after": ""})
    with backend.commit("labels", "round-1", message="first") as c:
        c.put_file("/a.json", b"{}")
    status, body = await api("GET", route, params={"after": "", "timeout": 0})
    assert status == 200 and [x["id"] for x in body["commits"]] == [c.finished.id]
    assert body["after"] == c.finished.id
