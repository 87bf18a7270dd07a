"""The history of one file: the commits that added, modified or deleted it, domain and route."""

from __future__ import annotations

from collections import Counter

import pytest

from jupyterlab_pachls.pfs.file_history import file_history
from jupyterlab_pachls.pfs.local import LocalBackend
from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)


def fill(backend) -> dict[str, str]:
    """notes.txt added, others touched, notes.txt modified, rewritten unchanged, deleted, added again."""
    backend.create_repo("docs")
    steps = [("add", {"/notes.txt": b"one\n", "/a.txt": b"a"}), ("other", {"/a.txt": b"b"}),
             ("modify", {"/notes.txt": b"two\n"}), ("same", {"/notes.txt": b"two\n"}),
             ("delete", {"/notes.txt": None}), ("again", {"/notes.txt": b"three\n"}), ("last", {"/b.txt": b"b"})]
    ids = {}
    for message, files in steps:
        with backend.commit("docs", "master", message=message, author="ann") as c:
            for path, data in files.items():
                c.delete_file(path) if data is None else c.put_file(path, data)
        ids[message] = c.finished.id
    return ids


def test_only_the_commits_that_changed_the_file_newest_first(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    ids = fill(backend)
    commits, cursor = file_history(backend, "docs", "master", "/notes.txt")
    assert [c.message for c in commits] == ["again", "delete", "modify", "add"] and cursor is None
    assert file_history(backend, "docs", "master", "/nothing.txt") == ([], None)

    # pages: by count, and by a scan budget that stops before the history's start
    first, cursor = file_history(backend, "docs", "master", "/notes.txt", limit=2)
    assert [c.message for c in first] == ["again", "delete"] and cursor == ids["delete"]
    rest, cursor = file_history(backend, "docs", "master", "/notes.txt", before=cursor)
    assert [c.message for c in rest] == ["modify", "add"] and cursor is None
    scanned, cursor = file_history(backend, "docs", "master", "/notes.txt", scan=3)
    assert [c.message for c in scanned] == ["again", "delete"] and cursor == ids["delete"]  # last, again, delete
    backend.close()


class CountingReads:
    """A backend that counts, per commit, how often a file of it is looked up (a cluster: one RPC each)."""

    def __init__(self, backend):
        self.backend = backend
        self.inspected: Counter = Counter()
        self.read: Counter = Counter()

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def inspect_file(self, repo, ref, path):
        self.inspected[ref] += 1
        return self.backend.inspect_file(repo, ref, path)

    def get_file(self, repo, ref, path):
        self.read[ref] += 1
        return self.backend.get_file(repo, ref, path)


def test_each_commit_of_the_walk_is_asked_once(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    ids = fill(backend)
    counting = CountingReads(backend)
    commits, _ = file_history(counting, "docs", "master", "/notes.txt")
    assert [c.message for c in commits] == ["again", "delete", "modify", "add"]
    assert set(counting.inspected) == set(ids.values())
    assert set(counting.inspected.values()) == {1}
    backend.close()


@pytest.fixture
def history(pachls_state):
    return fill(pachls_state.backend)


async def test_the_commits_route_filters_by_path(api, history):  # noqa: F811
    route = "repos/docs/branches/master/commits"
    status, body = await api("GET", route, params={"path": "/notes.txt", "limit": 3})
    assert status == 200, body
    assert [c["message"] for c in body["commits"]] == ["again", "delete", "modify"]
    assert body["next"] == history["modify"]
    status, body = await api("GET", route, params={"path": "/notes.txt", "before": body["next"]})
    assert ([c["id"] for c in body["commits"]], body["next"]) == ([history["add"]], None)
    status, body = await api("GET", route, params={"path": "/../etc/passwd"})
    assert (status, body["error"]) == (400, "invalid_path"), body
    status, body = await api("GET", route, params={"limit": 2})  # without path: every commit
    assert [c["message"] for c in body["commits"]] == ["last", "again"]
