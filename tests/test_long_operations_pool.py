"""Long operations run on their own bounded thread pool, so short routes never wait behind them.

A real Jupyter server with a long pool of 2 threads and 1 waiting place. Two ways to hold its
threads, each released by an Event the test controls:

- mount commits held inside the embedded store's ``finish_commit`` (a stand-in for a cluster slow
  to land a commit: the store itself runs, the finish waits first);
- labeling sessions created against a stuck Label Studio: an HTTP server that answers its health
  check and holds every API request until released (then answers 503).

While every long thread is held: the repos listing, health, the mounts and the labeling status
answer, one more commit waits its turn and the next long operation is refused at once with 503
``unavailable`` (busy). Released, every held operation ends.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

#: Seconds a held finish waits at most: a failing test ends instead of hanging.
HOLD_LIMIT = 120
#: Fail-safe bound for what must happen now (a route answering, a commit entering its finish).
SOON = 60


class StuckLabelStudio(ThreadingHTTPServer):
    """Answers ``/health``; holds every other request until ``release`` is set, then answers 503."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StuckLabelStudioRequest)
        self.release = threading.Event()
        self.held = threading.Semaphore(0)  # one release per request held

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class StuckLabelStudioRequest(BaseHTTPRequestHandler):
    server: StuckLabelStudio

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0] == "/health":
            status, body = 200, b'{"status": "UP"}'
        else:
            self.server.held.release()
            self.server.release.wait(HOLD_LIMIT)
            status, body = 503, b"released"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stuck_label_studio():
    server = StuckLabelStudio()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def pachls_config(stuck_label_studio) -> dict:
    return {"PachlsConfig": {"long_operation_threads": 2, "long_operation_queue": 1,
                             "label_studio_url": stuck_label_studio.url, "label_studio_token": "token"}}


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


async def test_short_routes_answer_while_label_studio_holds_every_long_thread(api, pachls_state,
                                                                             stuck_label_studio):
    backend = pachls_state.backend
    await asyncio.to_thread(backend.create_repo, "images")

    def add_images():
        with backend.commit("images", "master", message="images", author="ann") as c:
            c.put_files([("/cats/001.png", b"png-1"), ("/dogs/001.png", b"png-2")])

    await asyncio.to_thread(add_images)
    long_pool = pachls_state.long_operations

    def create(labels: str):
        return asyncio.ensure_future(api("POST", "labeling/sessions", {
            "data": "images@master", "labels": f"{labels}@master", "template": "image-classification",
            "classes": ["cat", "dog"]}))

    # Each creation reaches Label Studio (the first) or waits for the first in the service (the second).
    held = [create("labels"), create("more-labels")]
    assert await asyncio.to_thread(stuck_label_studio.held.acquire, timeout=SOON), "Label Studio was not asked"
    await until(lambda: long_pool.admitted == 2, "both creations hold a long thread")
    waiting = create("other-labels")
    await until(lambda: long_pool.admitted == 3, "the third creation waits for a thread")
    status, body = await asyncio.wait_for(api("POST", "mounts", {"repo": "images"}), SOON)
    assert status == 503 and body["details"]["reason"] == "busy", body

    status, body = await asyncio.wait_for(api("GET", "repos"), SOON)
    assert status == 200 and "images" in {r["name"] for r in body["repos"]}, body
    status, body = await asyncio.wait_for(api("GET", "health"), SOON)
    assert status == 200 and body["backend"]["connected"] is True, body
    status, body = await asyncio.wait_for(api("GET", "mounts"), SOON)
    assert status == 200, body
    status, body = await asyncio.wait_for(api("GET", "labeling"), SOON)
    assert status == 200 and body["label_studio"]["state"] == "running" and body["sessions"] == [], body
    assert not any(task.done() for task in held + [waiting]), "the creations were not held meanwhile"

    stuck_label_studio.release.set()
    for task in held + [waiting]:
        status, body = await asyncio.wait_for(task, SOON)
        assert status == 503 and body["error"] == "unavailable" and "Label Studio failed" in body["message"], body
    await until(lambda: long_pool.admitted == 0, "every long thread is free again")


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
            key = n % 1000  # added on one pass, popped on the next: the size keeps changing, memory stays flat
            with service._snapshot_lock:
                if session.committed.pop(f"/new-{key}.json", None) is None:
                    session.committed[f"/new-{key}.json"] = ["d"]
                if session.restored.pop(str(key), None) is None:
                    session.restored[str(key)] = {"id": key}
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
