"""REST routes for repos, branches, history, commits, files, downloads, diffs and head moves.

A real Jupyter server with the extension; the store is filled through the server's own
backend. Every response is checked against ``openapi.yaml`` (see ``openapi_check``).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import pytest
from jupyter_server.auth import IdentityProvider, User

from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def assert_error(status: int, body: dict, expected_status: int, code: str | tuple = None) -> None:
    assert status == expected_status, body
    assert set(body) == {"error", "message", "details"}, body
    if code is not None:
        codes = code if isinstance(code, tuple) else (code,)
        assert body["error"] in codes, body
    assert body["message"]


@pytest.fixture
def backend(pachls_state):
    return pachls_state.backend


@pytest.fixture
def history(backend):
    """Repo ``images``: 7 commits on master, a branch ``dev`` at the second one. Returns commit ids, oldest first."""
    backend.create_repo("images", description="pictures")
    ids = []
    with backend.commit("images", "master", message="c0", author="ann") as c:
        c.put_files([("/a.txt", b"one"), ("/dir/x.png", PNG), ("/dir/y.json", b'{"y": 1}'),
                     ("/dir/sub/z.txt", b"z")])
    ids.append(c.finished.id)
    with backend.commit("images", "master", message="c1", author="bob") as c:
        c.put_files([("/a.txt", b"two"), ("/b.txt", b"bee")])
    ids.append(c.finished.id)
    with backend.commit("images", "master", message="c2", author="ann") as c:
        c.delete_file("/dir/y.json")
    ids.append(c.finished.id)
    for i in range(3, 7):
        with backend.commit("images", "master", message=f"c{i}", author="ann") as c:
            c.put_file(f"/more/{i}.txt", str(i).encode())
        ids.append(c.finished.id)
    backend.create_branch("images", "dev", head=ids[1])
    return ids


def snapshot(backend) -> str:
    """Everything a bad request must leave alone: repos, branch heads, moves."""
    state = []
    for repo in backend.list_repos():
        for b in backend.list_branches(repo.key):
            state.append((repo.key, repo.description, b.name, b.head.id if b.head else None,
                          [m.to_json() for m in backend.branch_moves(repo.key, b.name)]))
    return json.dumps(state, default=str, sort_keys=True)


# -- repos -------------------------------------------------------------------------------------
async def test_repos_with_branches_in_one_request_costs_two_backend_calls(api, backend, monkeypatch):
    for i in range(20):
        backend.create_repo(f"r{i:02d}")
        with backend.commit(f"r{i:02d}", "master", message="init") as c:
            c.put_file("/f", b"x")
        backend.create_branch(f"r{i:02d}", "dev", head="master")
        backend.create_branch(f"r{i:02d}", "empty")
    calls = []
    for name in ("list_repos", "list_branches", "inspect_repo", "inspect_branch", "inspect_commit",
                 "list_commits"):
        original = getattr(backend, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(backend, name, counted)
    status, body = await api("GET", "repos")
    assert status == 200
    assert sorted(calls) == ["list_branches", "list_repos"]
    assert len(body["repos"]) == 20
    for repo in body["repos"]:
        assert [b["name"] for b in repo["branches"]] == ["dev", "empty", "master"]
        heads = {b["name"]: b["head"] for b in repo["branches"]}
        assert heads["empty"] is None
        assert heads["dev"]["id"] == heads["master"]["id"]
        assert heads["master"]["message"] == "init"


async def test_get_repo(api, history):
    status, body = await api("GET", "repos/images")
    assert status == 200
    assert body["name"] == "images" and body["description"] == "pictures"
    assert [b["name"] for b in body["branches"]] == ["dev", "master"]
    assert body["branches"][1]["head"]["id"] == history[-1]


async def test_get_unknown_repo_is_404(api):
    status, body = await api("GET", "repos/nope")
    assert_error(status, body, 404, "not_found")


async def test_project_repo_through_encoded_slash(api, raw_api):
    status, body = await api("POST", "repos", {"name": "team/data"})
    assert status == 201, body
    assert body["project"] == "team" and body["name"] == "data"
    response = await raw_api("GET", "repos/team%2Fdata")
    assert response.code == 200
    assert json.loads(response.body)["project"] == "team"
    status, body = await api("GET", "repos/data")
    assert_error(status, body, 404, "not_found")


async def test_delete_repo(api, history, backend):
    status, body = await api("DELETE", "repos/images")
    assert status == 204 and body is None
    status, body = await api("GET", "repos/images")
    assert_error(status, body, 404, "not_found")
    assert backend.list_repos() == []


async def test_delete_unknown_repo_is_404(api, history, backend):
    before = snapshot(backend)
    status, body = await api("DELETE", "repos/nope")
    assert_error(status, body, 404, "not_found")
    assert snapshot(backend) == before


@pytest.mark.parametrize("name", ["/etc", "a/b/c", "team/", "/team/data", "..", "a\x00"])
async def test_create_repo_refuses_path_like_names(api, name):
    status, body = await api("POST", "repos", {"name": name})
    assert_error(status, body, 400, "invalid_name")
    assert (await api("GET", "repos"))[1]["repos"] == []


async def test_create_repo_with_unknown_field_is_400(api):
    status, body = await api("POST", "repos", {"name": "x", "colour": "red"})
    assert_error(status, body, 400, "invalid_argument")
    assert (await api("GET", "repos"))[1]["repos"] == []


async def test_create_repo_bad_description_is_400(api):
    status, body = await api("POST", "repos", {"name": "x", "description": 3})
    assert_error(status, body, 400, "invalid_argument")


# -- branches ----------------------------------------------------------------------------------
async def test_list_branches(api, history):
    status, body = await api("GET", "repos/images/branches")
    assert status == 200
    assert [b["name"] for b in body["branches"]] == ["dev", "master"]
    assert body["branches"][0]["head"]["id"] == history[1]


async def test_list_branches_of_unknown_repo_is_404(api):
    status, body = await api("GET", "repos/nope/branches")
    assert_error(status, body, 404, "not_found")


async def test_get_branch(api, history):
    status, body = await api("GET", "repos/images/branches/master")
    assert status == 200
    assert body["name"] == "master" and body["head"]["id"] == history[-1]
    status, body = await api("GET", "repos/images/branches/nope")
    assert_error(status, body, 404, "not_found")


@pytest.mark.parametrize("head,index", [(None, None), ("master", -1), ("master^2", -3), ("ID1", 1)])
async def test_create_branch(api, history, head, index):
    if head == "ID1":
        head = history[1]
    status, body = await api("POST", "repos/images/branches", {"name": "feature", "head": head})
    assert status == 201, body
    assert body["name"] == "feature" and body["repo"] == "images"
    if index is None:
        assert body["head"] is None
    else:
        assert body["head"]["id"] == history[index]
    status, body = await api("GET", "repos/images/branches/feature")
    assert status == 200


@pytest.mark.parametrize(
    "payload,code,expected",
    [
        ({"name": "master"}, 409, "already_exists"),
        ({"name": "bad name"}, 400, "invalid_name"),
        ({"name": ".."}, 400, "invalid_name"),
        ({"name": ""}, 400, "invalid_argument"),
        ({}, 400, "invalid_argument"),
        ({"name": "f", "head": "nope"}, 404, "not_found"),
        ({"name": "f", "head": "0" * 32}, 404, "not_found"),
        ({"name": "f", "head": "master^99"}, 404, "not_found"),
        ({"name": "f", "head": "a b"}, 400, "parse_error"),
        ({"name": "f", "head": 7}, 400, "invalid_argument"),
        ({"name": "f", "extra": 1}, 400, "invalid_argument"),
    ],
)
async def test_create_branch_bad_input(api, history, backend, payload, code, expected):
    before = snapshot(backend)
    status, body = await api("POST", "repos/images/branches", payload)
    assert_error(status, body, code, expected)
    assert snapshot(backend) == before


async def test_create_branch_in_unknown_repo_is_404(api, history, backend):
    status, body = await api("POST", "repos/nope/branches", {"name": "x"})
    assert_error(status, body, 404, "not_found")


# -- history -----------------------------------------------------------------------------------
async def test_commit_history_is_paged_newest_first(api, history):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3}
        if cursor:
            params["before"] = cursor
        status, body = await api("GET", "repos/images/branches/master/commits", params=params)
        assert status == 200, body
        pages += 1
        assert len(body["commits"]) <= 3
        seen += [c["id"] for c in body["commits"]]
        cursor = body["next"]
        if cursor is None:
            break
        assert cursor == body["commits"][-1]["id"]
    assert pages == 3
    assert seen == list(reversed(history))


async def test_commit_history_default_limit_and_exact_last_page(api, history):
    status, body = await api("GET", "repos/images/branches/master/commits")
    assert status == 200
    assert [c["id"] for c in body["commits"]] == list(reversed(history))
    assert body["next"] is None
    status, body = await api("GET", "repos/images/branches/master/commits", params={"limit": 7})
    assert len(body["commits"]) == 7 and body["next"] is None
    status, body = await api("GET", "repos/images/branches/dev/commits")
    assert [c["id"] for c in body["commits"]] == [history[1], history[0]]
    assert body["commits"][0]["message"] == "c1" and body["commits"][0]["author"] == "bob"


async def test_history_of_empty_branch(api, history, backend):
    backend.create_branch("images", "empty")
    status, body = await api("GET", "repos/images/branches/empty/commits")
    assert status == 200 and body == {"commits": [], "next": None}


@pytest.mark.parametrize(
    "params,code",
    [({"limit": 0}, 400), ({"limit": 1001}, 400), ({"limit": "abc"}, 400), ({"limit": "-1"}, 400),
     ({"limit": "2.5"}, 400), ({"before": "not-a-cursor"}, 400), ({"before": "../x"}, 400),
     ({"before": "f" * 32}, 404)],
)
async def test_history_bad_query(api, history, params, code):
    status, body = await api("GET", "repos/images/branches/master/commits", params=params)
    assert_error(status, body, code)


async def test_history_of_unknown_branch_or_repo_is_404(api, history):
    status, body = await api("GET", "repos/images/branches/nope/commits")
    assert_error(status, body, 404, "not_found")
    status, body = await api("GET", "repos/nope/branches/master/commits")
    assert_error(status, body, 404, "not_found")


# -- commits -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ref,index", [("master", -1), ("master^1", -2), ("master^^", -3), ("dev", 1),
                                       ("ID0", 0)])
async def test_inspect_commit(api, history, ref, index):
    if ref == "ID0":
        ref = history[0]
    status, body = await api("GET", f"repos/images/commits/{ref}")
    assert status == 200, body
    assert body["id"] == history[index]
    assert body["repo"] == "images"
    assert body["finished"] is not None


@pytest.mark.parametrize("ref,code", [("nope", 404), ("master^7", 404), ("0" * 32, 404),
                                      ("master^x", 400), ("a b", 400)])
async def test_inspect_bad_commit(api, history, ref, code):
    status, body = await api("GET", f"repos/images/commits/{ref}")
    assert_error(status, body, code)


# -- files -------------------------------------------------------------------------------------
async def test_list_files(api, history):
    status, body = await api("GET", f"repos/images/commits/{history[0]}/files")
    assert status == 200
    assert body["path"] == "/"
    assert [i["path"] for i in body["items"]] == ["/a.txt", "/dir/"]
    assert body["next"] is None
    assert body["items"][0] == {"path": "/a.txt", "type": "file", "size": 3,
                                "hash": hashlib.sha256(b"one").hexdigest(), "committed": history[0],
                                "hash_kind": "sha256"}
    status, body = await api("GET", "repos/images/commits/master/files", params={"path": "/dir"})
    assert [i["path"] for i in body["items"]] == ["/dir/sub/", "/dir/x.png"]
    assert body["items"][0]["type"] == "dir"


async def test_list_files_paged(api, backend):
    backend.create_repo("big")
    with backend.commit("big", "master") as c:
        c.put_files([(f"/d/{i:03d}", b"x") for i in range(25)])
    seen, after = [], None
    while True:
        params = {"path": "/d/", "limit": 10}
        if after:
            params["after"] = after
        status, body = await api("GET", "repos/big/commits/master/files", params=params)
        assert status == 200
        assert len(body["items"]) <= 10
        seen += [i["path"] for i in body["items"]]
        after = body["next"]
        if after is None:
            break
    assert seen == [f"/d/{i:03d}" for i in range(25)]


async def test_list_files_default_page_is_400(api, backend):
    backend.create_repo("big")
    with backend.commit("big", "master") as c:
        c.put_files([(f"/{i:04d}", b"x") for i in range(401)])
    status, body = await api("GET", "repos/big/commits/master/files")
    assert len(body["items"]) == 400 and body["next"] == "/0399"


@pytest.mark.parametrize(
    "params,code,error",
    [
        ({"path": "../etc"}, 400, "invalid_path"),
        ({"path": "/dir/../a.txt"}, 400, "invalid_path"),
        ({"path": "/dir/./sub"}, 400, "invalid_path"),
        ({"path": "dir//sub"}, 400, "invalid_path"),
        ({"path": "/dir\x00"}, 400, "invalid_path"),
        ({"path": "/a.txt"}, 400, "invalid_argument"),
        ({"path": "/missing"}, 404, "not_found"),
        ({"limit": 0}, 400, "invalid_argument"),
        ({"limit": 10001}, 400, "invalid_argument"),
        ({"limit": "x"}, 400, "invalid_argument"),
        ({"after": "../x"}, 400, "invalid_path"),
    ],
)
async def test_list_files_bad_query(api, history, params, code, error):
    status, body = await api("GET", "repos/images/commits/master/files", params=params)
    assert_error(status, body, code, error)


async def test_list_files_unknown_commit_is_404(api, history):
    status, body = await api("GET", f"repos/images/commits/{'a' * 32}/files")
    assert_error(status, body, 404, "not_found")


async def test_download_file(raw_api, history):
    response = await raw_api("GET", f"repos/images/commits/{history[0]}/file?path=/dir/x.png")
    assert response.code == 200
    assert response.body == PNG
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Length"] == str(len(PNG))
    assert response.headers["Content-Disposition"].startswith('attachment; filename="x.png"')
    assert response.headers["ETag"] == f'"{hashlib.sha256(PNG).hexdigest()}"'
    # The same path in an older commit holds older bytes.
    response = await raw_api("GET", "repos/images/commits/master%5E6/file?path=%2Fa.txt")
    assert response.code == 200 and response.body == b"one"
    response = await raw_api("GET", "repos/images/commits/master/file?path=%2Fa.txt")
    assert response.body == b"two"
    assert response.headers["Content-Type"].startswith("text/plain")


async def test_download_large_file_is_streamed_whole(raw_api, backend):
    data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)
    backend.create_repo("big")
    with backend.commit("big", "master") as c:
        c.put_file("/weights.bin", data)
    response = await raw_api("GET", "repos/big/commits/master/file?path=/weights.bin")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert int(response.headers["Content-Length"]) == len(data)
    assert response.body == data


async def test_download_unicode_name(raw_api, backend):
    backend.create_repo("docs")
    with backend.commit("docs", "master") as c:
        c.put_file("/résumé \"final\".txt", b"hi")
    path = urllib.parse.quote("/résumé \"final\".txt", safe="")
    response = await raw_api("GET", f"repos/docs/commits/master/file?path={path}")
    assert response.code == 200 and response.body == b"hi"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt" in disposition


@pytest.mark.parametrize(
    "query,code,error",
    [
        ("", 400, "invalid_argument"),
        ("?path=/", 400, "invalid_argument"),
        ("?path=/dir", 400, "invalid_argument"),
        ("?path=/nope", 404, "not_found"),
        ("?path=/dir/y.json", 404, "not_found"),  # deleted in c2
        ("?path=../../etc/passwd", 400, "invalid_path"),
        ("?path=/dir/%2e%2e/a.txt", 400, "invalid_path"),
        ("?path=/a.txt%00", 400, "invalid_path"),
        ("?path=/a.txt&path=/b.txt", 400, "invalid_argument"),
    ],
)
async def test_download_bad_query(raw_api, history, query, code, error):
    response = await raw_api("GET", f"repos/images/commits/master/file{query}")
    assert response.code == code, response.body
    body = json.loads(response.body)
    assert body["error"] == error
    assert "Content-Disposition" not in response.headers


# -- diff --------------------------------------------------------------------------------------
async def test_diff_two_commits(api, history):
    status, body = await api("GET", "repos/images/diff", params={"from": history[0], "to": history[2]})
    assert status == 200, body
    assert body["from"] == history[0] and body["to"] == history[2] and body["path"] == "/"
    changes = {c["path"]: c for c in body["changes"]}
    assert set(changes) == {"/a.txt", "/b.txt", "/dir/y.json"}
    assert changes["/a.txt"]["change"] == "modified"
    assert changes["/a.txt"]["old"]["size"] == 3 and changes["/a.txt"]["new"]["size"] == 3
    assert changes["/b.txt"]["change"] == "added" and changes["/b.txt"]["old"] is None
    assert changes["/dir/y.json"]["change"] == "deleted" and changes["/dir/y.json"]["new"] is None


async def test_diff_defaults_to_parent_and_filters_by_path(api, history):
    status, body = await api("GET", "repos/images/diff", params={"to": "master^4"})
    assert status == 200
    assert body["from"] == history[1] and body["to"] == history[2]
    assert [(c["path"], c["change"]) for c in body["changes"]] == [("/dir/y.json", "deleted")]
    status, body = await api("GET", "repos/images/diff", params={"to": history[0]})
    assert body["from"] is None
    assert {c["change"] for c in body["changes"]} == {"added"}
    status, body = await api("GET", "repos/images/diff",
                             params={"from": history[0], "to": "master", "path": "/dir"})
    assert [c["path"] for c in body["changes"]] == ["/dir/y.json"]


@pytest.mark.parametrize(
    "params,code",
    [({}, 400), ({"to": "nope"}, 404), ({"to": "master", "from": "0" * 32}, 404),
     ({"to": "master", "from": "a^b"}, 400), ({"to": "master", "path": "/../x"}, 400),
     ({"to": "master", "path": "/a\x00"}, 400)],
)
async def test_diff_bad_query(api, history, params, code):
    status, body = await api("GET", "repos/images/diff", params=params)
    assert_error(status, body, code)


# -- head moves (rollback) ---------------------------------------------------------------------
class NamedUserProvider(IdentityProvider):
    """Jupyter's token identity, with a fixed name instead of a random anonymous one."""

    def generate_anonymous_user(self, handler):
        return User(username="ann-uid", name="Ann Labeler", display_name="Ann Labeler")


class TestRollback:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        config = dict(jp_server_config)
        config["ServerApp"] = {**config["ServerApp"], "identity_provider_class": NamedUserProvider}
        return config

    async def test_rollback_records_the_jupyter_user(self, api, history, jp_fetch):
        identity = json.loads((await jp_fetch("api", "me")).body)["identity"]
        assert identity["name"] == "Ann Labeler"
        status, body = await api("PUT", "repos/images/branches/master/head",
                                 {"commit": history[3], "expected_head": history[-1]})
        assert status == 200, body
        assert body["head"]["id"] == history[3]
        status, body = await api("GET", "repos/images/branches/master/commits")
        assert [c["id"] for c in body["commits"]] == list(reversed(history[:4]))
        status, body = await api("GET", "repos/images/branches/master/moves")
        assert status == 200
        [move] = body["moves"]
        assert move["old_head"] == history[-1] and move["new_head"] == history[3]
        assert move["author"] == "Ann Labeler <ann-uid@localhost>" and move["reason"] == "rollback"
        # Nothing is lost: roll forward again, by id.
        status, body = await api("PUT", "repos/images/branches/master/head",
                                 {"commit": history[-1], "reason": "roll forward"})
        assert status == 200 and body["head"]["id"] == history[-1]
        status, body = await api("GET", "repos/images/branches/master/moves")
        assert [m["reason"] for m in body["moves"]] == ["roll forward", "rollback"]


async def test_move_by_relative_ref(api, history):
    status, body = await api("PUT", "repos/images/branches/master/head", {"commit": "master^2"})
    assert status == 200 and body["head"]["id"] == history[-3]


@pytest.mark.parametrize(
    "payload,code,error",
    [
        ({"commit": "ID3", "expected_head": "ID0"}, 409, "conflict"),
        ({}, 400, "invalid_argument"),
        ({"commit": ""}, 400, "invalid_argument"),
        ({"commit": "0" * 32}, 404, "not_found"),
        ({"commit": "master^50"}, 404, "not_found"),
        ({"commit": "../x"}, 400, "parse_error"),
        ({"commit": "ID3", "expected_head": "nope"}, 400, "invalid_argument"),
        ({"commit": "ID3", "reason": ""}, 400, "invalid_argument"),
        ({"commit": "ID3", "author": "mallory"}, 400, "invalid_argument"),
    ],
)
async def test_move_head_bad_input_changes_nothing(api, history, backend, payload, code, error):
    payload = {k: (history[int(v[2:])] if isinstance(v, str) and v.startswith("ID") else v)
               for k, v in payload.items()}
    before = snapshot(backend)
    status, body = await api("PUT", "repos/images/branches/master/head", payload)
    assert_error(status, body, code, error)
    assert snapshot(backend) == before


async def test_move_unknown_branch_is_404(api, history, backend):
    status, body = await api("PUT", "repos/images/branches/nope/head", {"commit": history[0]})
    assert_error(status, body, 404, "not_found")
    status, body = await api("GET", "repos/images/branches/nope/moves")
    assert_error(status, body, 404, "not_found")


# -- hostile input in every path parameter -------------------------------------------------------
ROUTES = [
    ("GET", "repos/{repo}"),
    ("DELETE", "repos/{repo}"),
    ("GET", "repos/{repo}/branches"),
    ("POST", "repos/{repo}/branches"),
    ("GET", "repos/{repo}/branches/{branch}"),
    ("GET", "repos/{repo}/branches/{branch}/commits"),
    ("PUT", "repos/{repo}/branches/{branch}/head"),
    ("GET", "repos/{repo}/branches/{branch}/moves"),
    ("GET", "repos/{repo}/commits/{ref}"),
    ("GET", "repos/{repo}/commits/{ref}/files"),
    ("GET", "repos/{repo}/commits/{ref}/file?path=/a.txt"),
    ("GET", "repos/{repo}/diff?to=master"),
    ("GET", "mounts/{name}"),
    ("DELETE", "mounts/{name}"),
    ("POST", "mounts/{name}/refresh"),
    ("GET", "mounts/{name}/changes"),
    ("POST", "mounts/{name}/commit"),
    ("POST", "mounts/{name}/discard"),
]
GOOD = {"repo": "images", "branch": "master", "ref": "master", "name": "images"}
HOSTILE = ["..", "%2e%2e", "%2E%2E", ".", "%2e", "..%2F..%2Fetc", "%2Fetc%2Fpasswd", "%2F", "a%00b",
           "%00", "a%2F..%2Fb", "%5C..%5C", "a%0Ab", "~root"]
CASES = [
    (method, template, param, value)
    for method, template in ROUTES
    for param in ("repo", "branch", "ref", "name")
    if "{" + param + "}" in template
    for value in HOSTILE
]


@pytest.mark.parametrize("method,template,param,value", CASES,
                         ids=[f"{m} {t} {p}={v}" for m, t, p, v in CASES])
async def test_hostile_path_parameter_is_400_and_changes_nothing(
    raw_api, history, backend, tmp_path, method, template, param, value
):
    before = snapshot(backend)
    path = template
    for name, good in GOOD.items():
        path = path.replace("{" + name + "}", value if name == param else good)
    body = {"name": "x", "commit": "master", "message": "m"} if method in ("POST", "PUT") else None
    response = await raw_api(method, path, body=body)
    assert response.code == 400, (path, response.code, response.body)
    error = json.loads(response.body)
    assert error["error"] in ("invalid_name", "parse_error", "invalid_argument"), error
    assert snapshot(backend) == before


# -- bodies --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method,path",
    [("POST", "repos"), ("POST", "repos/images/branches"), ("PUT", "repos/images/branches/master/head"),
     ("PUT", "backend"), ("POST", "mounts"), ("POST", "mounts/images/commit")],
)
async def test_oversized_body_is_413_and_changes_nothing(api, history, backend, method, path):
    before = snapshot(backend)
    payload = json.dumps({"name": "huge", "description": "x" * (1 << 20)}).encode()
    status, body = await api(method, path, raw=payload)
    assert_error(status, body, 413, "payload_too_large")
    assert body["details"]["limit"] == 1 << 20
    assert snapshot(backend) == before


async def test_body_just_under_the_limit_is_accepted(api, history):
    description = "x" * ((1 << 20) - 100)
    status, body = await api("POST", "repos", {"name": "roomy", "description": description})
    assert status == 201 and len(body["description"]) == len(description)


@pytest.mark.parametrize("raw", [b"{not json", b"[1]", b'"s"', b"\xff\xfe"])
@pytest.mark.parametrize("method,path", [("POST", "repos/images/branches"),
                                         ("PUT", "repos/images/branches/master/head")])
async def test_bad_json_is_400(api, history, backend, method, path, raw):
    before = snapshot(backend)
    status, body = await api(method, path, raw=raw)
    assert_error(status, body, 400, "invalid_argument")
    assert snapshot(backend) == before


# -- the repos listing is cached while the store is unchanged, never stale ------------------------
async def test_repos_listing_etag_and_freshness(raw_api, history, backend, pachls_store):
    import subprocess
    import sys

    first = await raw_api("GET", "repos")
    etag = first.headers["ETag"]
    again = await raw_api("GET", "repos", headers={"If-None-Match": etag})
    assert again.code == 304 and again.body == b""

    # A write by another process (a kernel on the same store) is seen on the next request.
    code = (
        "import sys\n"
        "from jupyterlab_pachls.pfs import LocalBackend\n"
        "b = LocalBackend(sys.argv[1])\n"
        "with b.commit('images', 'master', message='from a kernel', author='kern') as c:\n"
        "    c.put_file('/k.txt', b'k')\n"
        "print(c.finished.id)\n"
        "b.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(pachls_store)], check=True,
                         capture_output=True, text=True, timeout=120)
    new_id = out.stdout.strip().splitlines()[-1]
    response = await raw_api("GET", "repos", headers={"If-None-Match": etag})
    assert response.code == 200
    assert response.headers["ETag"] != etag
    master = {b["name"]: b for b in json.loads(response.body)["repos"][0]["branches"]}["master"]
    assert master["head"]["id"] == new_id and master["head"]["message"] == "from a kernel"

    # A write in this process, through the server's backend, too.
    backend.move_branch("images", "master", history[0], author="x")
    response = await raw_api("GET", "repos")
    master = {b["name"]: b for b in json.loads(response.body)["repos"][0]["branches"]}["master"]
    assert master["head"]["id"] == history[0]
    backend.create_repo("zeta")
    response = await raw_api("GET", "repos")
    assert [r["name"] for r in json.loads(response.body)["repos"]] == ["images", "zeta"]
