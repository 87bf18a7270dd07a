"""A fresh embedded store served by ``make_server`` and a real ``pachyderm_sdk.Client`` on it."""

from __future__ import annotations

import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.server import make_server


@pytest.fixture
def served(tmp_path):
    store = LocalBackend(tmp_path / "store")
    server, port = make_server(store, "127.0.0.1:0")
    try:
        yield store, port
    finally:
        server.stop(grace=None).wait()
        store.close()


@pytest.fixture
def client(served) -> Client:
    _store, port = served
    return Client("127.0.0.1", port)


@pytest.fixture
def repo(client) -> pfs.Repo:
    repo = pfs.Repo(name="images", type="user", project=pfs.Project(name="default"))
    client.pfs.create_repo(repo=repo)
    return repo


@pytest.fixture
def master(repo) -> pfs.Branch:
    return pfs.Branch(repo=repo, name="master")


@pytest.fixture
def put(client):
    """``put(branch, {path: bytes})``: one finished commit writing the files (overwriting); its CommitInfo."""
    def commit_files(branch: pfs.Branch, files: dict[str, bytes], description: str = "") -> pfs.CommitInfo:
        with client.pfs.commit(branch=branch, description=description) as commit:
            for path, data in files.items():
                commit.put_file_from_bytes(path=path, data=data)
        return client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    return commit_files
