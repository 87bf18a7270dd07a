"""How far a mount's branch moved on (``behind``): counted for the base the mount had when the count
started, and never kept past a history rewrite."""

from __future__ import annotations

import time

import pytest

from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.mount import manager as manager_module
from jupyterlab_pachls.pfs import LocalBackend


@pytest.fixture
def backend(tmp_path):
    made = LocalBackend(tmp_path / "store")
    made.create_repo("r")
    yield made
    made.close()


def commit(backend, branch: str, path: str) -> str:
    with backend.commit("r", branch) as c:
        c.put_file(path, path.encode())
    return backend.inspect_branch("r", branch).head.id


def test_a_base_moved_while_counting_does_not_store_its_count_under_the_old_base(backend, dirs, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    commit(backend, "master", "/a.txt")
    other = commit(backend, "side", "/side.txt")  # not in master's history: counted from it, -1
    manager = MountManager(backend, dirs[0], dirs[1])
    try:
        manager.mount("r", mode="ro", name="m")
        commit(backend, "master", "/b.txt")
        record = manager._mounts["m"].record
        base = record.base
        real_list_commits = backend.list_commits

        def base_moves_meanwhile(*args, **kwargs):
            record.base = other  # as a refresh landing while the history is read
            return real_list_commits(*args, **kwargs)

        monkeypatch.setattr(backend, "list_commits", base_moves_meanwhile)
        manager.status("m")
        monkeypatch.setattr(backend, "list_commits", real_list_commits)
        record.base = base
        assert manager.status("m").behind == 1
    finally:
        manager.close()


def test_a_squash_between_base_and_head_is_seen_once_the_kept_count_ages(backend, dirs, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    monkeypatch.setattr(manager_module, "BEHIND_COUNT_AGE", 0.5)
    commit(backend, "master", "/a.txt")
    manager = MountManager(backend, dirs[0], dirs[1])
    try:
        manager.mount("r", mode="ro", name="m")
        middle = commit(backend, "master", "/b.txt")
        commit(backend, "master", "/c.txt")
        assert manager.status("m").behind == 2
        backend.squash_commit("r", middle)  # same base, same head, one commit fewer between them
        deadline = time.monotonic() + 30.0
        while manager.status("m").behind != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert manager.status("m").behind == 1
    finally:
        manager.close()
