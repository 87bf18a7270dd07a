"""Long operations run on their own bounded thread pool, so short routes never wait behind them.

A real Jupyter server with a long pool of 2 threads and 1 waiting place; mount commits are held
inside the embedded store's ``finish_commit`` by an Event the test controls (a stand-in for a
cluster slow to land a commit: the store itself runs, the finish waits first). While every long
thread is held: the repos listing, health and the mounts answer, one more commit waits its turn and
the next long operation is refused at once with 503 ``unavailable`` (busy). Released, every commit
lands.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import pytest

from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

#: Seconds a held finish waits at most: a failing test ends instead of hanging.
HOLD_LIMIT = 120
#: Fail-safe bound for what must happen now (a route answering, a commit entering its finish).
SOON = 60


@pytest.fixture
def pachls_config() -> dict:
    return {"PachlsConfig": {"long_operation_threads": 2, "long_operation_queue": 1}}


@pytest.fixture
def jp_server_config(jp_server_config, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")  # plain folders: the test writes files, FUSE is not the point
    return jp_server_config


@pytest.fixture
def held_finish(pachls_state, monkeypatch):
    """Every ``finish_commit`` of the server's store first waits for ``release``; ``entered`` counts
    the finishes waiting."""
    backend = pachls_state.backend
    finish = backend.finish_commit
    release = threading.Event()
    entered = threading.Semaphore(0)

    def held(commit, **kwargs):
        entered.release()
        release.wait(HOLD_LIMIT)
        return finish(commit, **kwargs)

    monkeypatch.setattr(backend, "finish_commit", held)
    yield release, entered
    release.set()


async def until(condition, what: str) -> None:
    for _ in range(SOON * 20):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {SOON} s: {what}")


async def test_short_routes_answer_while_every_long_thread_is_held(api, pachls_state, held_finish, jp_root_dir):
    release, entered = held_finish
    backend = pachls_state.backend
    names = ["one", "two", "three", "four"]
    for name in names:
        await asyncio.to_thread(backend.create_repo, name)
        status, body = await api("POST", "mounts", {"repo": name, "mode": "rw"})
        assert status == 201, body
        await asyncio.to_thread((Path(jp_root_dir) / "pfs" / name / "labels.json").write_bytes, b"{}")
    long_pool = pachls_state.long_operations

    def commit(name: str):
        return asyncio.ensure_future(api("POST", f"mounts/{name}/commit", {"message": f"labels of {name}"}))

    running = [commit("one"), commit("two")]
    for _ in running:
        assert await asyncio.to_thread(entered.acquire, timeout=SOON), "a commit did not reach its finish"
    waiting = commit("three")
    await until(lambda: long_pool.admitted == 3, "the third commit waits for a thread")

    # Full: the next long operation is refused at once, and says why.
    status, body = await asyncio.wait_for(api("POST", "mounts/four/commit", {"message": "too many"}), SOON)
    assert status == 503, body
    assert body["error"] == "unavailable" and body["details"]["reason"] == "busy", body
    assert "busy" in body["message"]

    # Short routes answer while both long threads are held and one commit waits.
    status, body = await asyncio.wait_for(api("GET", "repos"), SOON)
    assert status == 200 and {r["name"] for r in body["repos"]} == set(names), body
    status, body = await asyncio.wait_for(api("GET", "health"), SOON)
    assert status == 200 and body["backend"]["connected"] is True, body
    status, body = await asyncio.wait_for(api("GET", "mounts"), SOON)
    assert status == 200, body
    states = {m["name"]: m["state"] for m in body["mounts"]}
    assert states["one"] == states["two"] == "committing", states
    status, body = await asyncio.wait_for(api("GET", "mounts/four"), SOON)
    assert status == 200 and body["pending"] == 1, body
    assert not any(task.done() for task in running + [waiting]), "the long operations were not held meanwhile"

    release.set()
    for name, task in zip(("one", "two", "three"), running + [waiting]):
        status, body = await asyncio.wait_for(task, SOON)
        assert status == 201, body
        assert body["commit"]["message"] == f"labels of {name}"
        assert [c.message for c in await asyncio.to_thread(backend.list_commits, name, "master")] == [
            f"labels of {name}"]
    await until(lambda: long_pool.admitted == 0, "every long thread is free again")
    status, body = await api("POST", "mounts/four/commit", {"message": "now there is room"})
    assert status == 201, body


@pytest.fixture
def frequent_thread_switches():
    """Threads switch as often as possible: a race between a reader and a writer shows at once."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_sessions_are_read_as_copies_while_a_worker_changes_them(tmp_path, frequent_thread_switches):
    """The panel's session list (on the event loop) while label commits record what they committed in
    worker threads: no reader iterates a dict a writer is changing ("dictionary changed size during
    iteration"). The writer below changes a session's containers as a label commit does, under the
    service's snapshot lock; the reader is what the routes call."""
    from jupyterlab_pachls.labeling.session import LabelingService, Session

    service = LabelingService(lambda: None, lambda: None, None, tmp_path / "labeling")
    session = Session(id="s1", title="t", data_repo="images", data_branch="master", data_commit="c" * 32,
                      glob="/**", labels_repo="labels", labels_branch="master", project_id=1,
                      data_mount="images", labels_mount="labels", data_key="image", created_by="", created=0.0)
    session.committed.update((f"/{i}.json", ["d"]) for i in range(5000))
    service._sessions[session.id] = session
    stop = threading.Event()

    def label_commits() -> None:
        n = 0
        while not stop.is_set():
            with service._snapshot_lock:
                session.committed[f"/new-{n}.json"] = ["d"]
                session.restored[str(n)] = {"id": n}
            n += 1

    writer = threading.Thread(target=label_commits)
    writer.start()
    try:
        for _ in range(300):
            shown = [s.to_json() for s in service.list_sessions()]
            assert shown[0]["id"] == "s1" and "committed" not in shown[0]
            assert service.get("s1").to_json() == shown[0]
    finally:
        stop.set()
        writer.join()
