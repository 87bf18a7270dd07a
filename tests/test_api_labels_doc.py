"""The label history routes (blame, diff, rows) answer as ``openapi.yaml`` documents them,
without Label Studio: label files are written straight into the labels repo."""

from __future__ import annotations

import json

import pytest

from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)


@pytest.fixture
def labels(pachls_state):
    backend = pachls_state.backend
    backend.create_repo("labels")
    with backend.commit("labels", "master", message="round 1", author="ann") as c:
        c.put_file("/cats/001.png.json", json.dumps({"annotations": []}).encode())
    return c.finished.id


async def test_blame_diff_rows_shapes(api, labels):
    status, body = await api("GET", "labels/blame", params={"repo": "labels", "path": "/cats/001.png.json"})
    assert status == 200, body
    assert body["path"] == "/cats/001.png.json"
    status, body = await api("GET", "labels/diff", params={"repo": "labels", "to": labels})
    assert status == 200, body
    status, body = await api("GET", "labels/rows", params={"repo": "labels"})
    assert status == 200, body
    assert isinstance(body["rows"], list)


@pytest.mark.parametrize(
    "route,params,code",
    [("labels/blame", {"repo": "labels"}, 400),
     ("labels/blame", {"repo": "../x", "path": "/a"}, 400),
     ("labels/blame", {"repo": "labels", "path": "/../a"}, 400),
     ("labels/blame", {"repo": "nope", "path": "/a"}, 404),
     ("labels/diff", {"repo": "labels", "to": "a^b"}, 400),
     ("labels/rows", {"repo": "labels", "path": "/a\x00"}, 400)],
)
async def test_label_routes_refuse_bad_input(api, labels, route, params, code):
    status, body = await api("GET", route, params=params)
    assert status == code, body
    assert set(body) == {"error", "message", "details"}
