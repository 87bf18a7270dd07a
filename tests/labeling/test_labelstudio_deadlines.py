"""Label Studio calls under deadlines, and panel polls that never wait behind a label commit.

Real parts: Label Studio (the test session's process, and a Jupyter server's own copy), the store,
mounts, the Jupyter server and its routes. A Label Studio that accepts and never answers is played
two ways: the real process stopped with SIGSTOP (the kernel still accepts its connections), and, for
a team server given by URL, a stand-in: a TCP server that accepts and never answers.
Bounds on how long a call took are generous: they tell "ended within its deadline" from "hung".
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import os
import signal
import socket
import threading
import time
import uuid

import httpx
import pytest
from label_studio_sdk import LabelStudio

from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.labeling.labelfile import decode, label_path
from jupyterlab_pachls.labeling.labelstudio import ExternalLabelStudio
from jupyterlab_pachls.labeling.session import COMMIT, POLL, CallDeadline, Deadlines, LabelingService, Session
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.errors import InvalidArgument, Unavailable
from jupyterlab_pachls.pfs.model import OPAQUE
from labeling.test_proxy import ls_copy, wait_running  # noqa: F401  (fixture: a server's own Label Studio)
from labeling.test_session import pachyderm_backend  # noqa: F401  (fixture: the store over real gRPC)

#: Longer than any deadline a test here runs under (poll 5 s, the shortened commit one 3 s) plus a
#: busy machine's slack; far shorter than the 300 s the calls had before deadlines.
ENDED_WITHIN = 45.0
#: A label commit's deadline made short for these tests (the default is a minute).
SHORT_COMMIT = CallDeadline("commit", ready=2.0, timeout=httpx.Timeout(3.0, connect=2.0), read_most=3.0)


@pytest.fixture
def pachls_config(ls_copy):  # noqa: F811
    return {"PachlsConfig": {"label_studio_dir": str(ls_copy)}}


@pytest.fixture
def never_answers():
    """The URL of a TCP server that accepts connections and never answers (nor closes them)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, name="never-answers", daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    for connection in held:
        connection.close()


@pytest.fixture
def world(tmp_path, label_studio, ls_document_root, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("images")
    with backend.commit("images", "master", message="demo images", author="demo") as c:
        c.put_files(demo_files())
    mounts = MountManager(backend, ls_document_root / uuid.uuid4().hex[:8], tmp_path / "mount-state", fuse=False)
    service = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")
    yield backend, mounts, service
    mounts.close()
    backend.close()


def sdk(label_studio) -> LabelStudio:
    return LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)


def choose(client: LabelStudio, task_id: int, label: str):
    return client.annotations.create(id=task_id, result=[{"from_name": "choice", "to_name": "image",
                                                          "type": "choices", "value": {"choices": [label]}}])


def tasks_by_path(client: LabelStudio, project: int) -> dict[str, int]:
    return {t.data["pachls_path"]: t.id for t in client.tasks.list(project=project)}


def outcome(fn, bound: float = ENDED_WITHIN):
    """What ``fn()`` returned or raised, run in a thread that must end within ``bound`` s."""
    result: list = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001  (handed to the test)
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"the call did not end within {bound} s"
    return result[0]


def assert_timed_out(error, kind: str) -> None:
    assert isinstance(error, Unavailable), repr(error)
    assert error.code == "unavailable" and "Label Studio" in error.message, error.message
    assert error.details["label_studio"] == "timeout" and error.details["kind"] == kind, error.details
    assert error.details["timed_out"] == "read" and error.details["call"].startswith("GET /api/"), error.details
    assert error.details["call"] in error.message


def test_a_label_studio_that_accepts_and_never_answers_makes_each_call_unavailable_within_its_deadline(
        world, label_studio, never_answers, monkeypatch):
    backend, mounts, service = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/00[12].png",
                                     template="image-classification", classes=["cat", "dog"], user="ana")
    client = sdk(label_studio)
    choose(client, tasks_by_path(client, session.project_id)["/cats/001.png"], "cat")
    head = backend.inspect_branch("labels", "master").head

    # the team's server (given by URL) hangs: a TCP server that accepts and never answers
    service.label_studio = ExternalLabelStudio(never_answers, label_studio.credentials.token)
    assert_timed_out(outcome(lambda: service.pending(session.id)), "poll")
    status = outcome(service.label_studio.status)
    assert status.state == "failed" and "GET /health" in status.message, status
    assert [s.id for s in service.list_sessions()] == [session.id]

    monkeypatch.setattr(service, "deadlines", dataclasses.replace(service.deadlines, commit=SHORT_COMMIT))
    assert_timed_out(outcome(lambda: service.commit_labels(session.id, message="round", author="ana")), "commit")
    # nothing half-made: no commit, nothing staged
    assert backend.inspect_branch("labels", "master").head == head
    assert mounts.status(session.labels_mount).pending == 0

    # it answers again: the annotation it held was not lost
    service.label_studio = label_studio
    landed = service.commit_labels(session.id, message="round", author="ana")
    label = decode(backend.get_file("labels", landed.id, label_path("/cats/001.png")))
    assert [a["result"][0]["value"]["choices"] for a in label["annotations"]] == [["cat"]]


async def test_a_stopped_label_studio_makes_the_pending_poll_unavailable_within_seconds_and_loses_no_label(
        api, pachls_state, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="demo") as c:
        c.put_files(demo_files())
    await wait_running(api)
    status, session = await api("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/dogs/00[12].png",
        "template": "image-classification", "classes": ["cat", "dog"]})
    assert status == 201, session
    ls = pachls_state.labeling.label_studio
    client = sdk(ls)
    choose(client, tasks_by_path(client, session["project_id"])["/dogs/002.png"], "dog")
    process = ls._process
    labeling = pachls_state.labeling
    monkeypatch.setattr(labeling, "deadlines", dataclasses.replace(labeling.deadlines, commit=SHORT_COMMIT))

    os.killpg(process.pid, signal.SIGSTOP)  # still accepts connections (the kernel does), answers nothing
    try:
        status, body = await api("GET", f"labeling/sessions/{session['id']}/pending")
        assert status == 503 and body["error"] == "unavailable", body
        assert body["details"]["kind"] == "poll" and body["details"]["timed_out"] == "read", body
        # what does not need Label Studio's answer answers
        status, body = await api("GET", "labeling/sessions")
        assert status == 200 and [s["id"] for s in body["sessions"]] == [session["id"]], body
        status, body = await api("GET", "labeling")
        assert status == 200 and [s["id"] for s in body["sessions"]] == [session["id"]], body
        status, body = await api("POST", f"labeling/sessions/{session['id']}/commit", {"message": "round"})
        assert status == 503 and body["details"]["kind"] == "commit", body
        assert backend.inspect_branch("labels", "master").head is None  # no half-commit
    finally:
        os.killpg(process.pid, signal.SIGCONT)

    status, body = await api("POST", f"labeling/sessions/{session['id']}/commit", {"message": "round"})
    assert status == 201, body
    label = decode(backend.get_file("labels", body["id"], label_path("/dogs/002.png")))
    assert [a["result"][0]["value"]["choices"] for a in label["annotations"]] == [["dog"]]


def test_pending_answers_while_a_label_commit_holds_its_lock_and_a_resync_waits_for_it(
        tmp_path, label_studio, ls_document_root, pachyderm_backend, monkeypatch):  # noqa: F811
    """The chain that made a poll wait: a label commit holds its labels mount's lock, a resync (a long
    operation) waits for that lock holding the service's lock, and the poll, finding a file on the
    labels branch whose digest it did not know (a cluster's hashes are opaque), needed the service's
    lock to remember it. And the commit, once landed, took that lock too: commit and resync waited
    for each other until the resync gave up (COMMIT_WAIT, 300 s)."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = pachyderm_backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="demo images", author="demo") as c:
        c.put_files(demo_files())
    mounts = MountManager(backend, ls_document_root / uuid.uuid4().hex[:8], tmp_path / "mount-state", fuse=False)
    try:
        first = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")
        cats = first.create_session(data="images@master", labels="labels@master", glob="/cats/00[12].png",
                                    template="image-classification", classes=["cat", "dog"], user="ana")
        dogs = first.create_session(data="images@master", labels="labels@master", glob="/dogs/00[12].png",
                                    template="image-classification", classes=["cat", "dog"], user="ana")
        client = sdk(label_studio)
        tasks = tasks_by_path(client, cats.project_id)
        choose(client, tasks["/cats/001.png"], "cat")
        first.commit_labels(cats.id, message="first round", author="ana")

        service = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")  # restarted
        choose(client, tasks["/cats/002.png"], "dog")
        in_store, release = threading.Event(), threading.Event()
        real_commit = mounts.commit

        def slow_commit(*args, **kwargs):  # the store takes its time to land this commit
            in_store.set()
            assert release.wait(120)
            return real_commit(*args, **kwargs)

        monkeypatch.setattr(mounts, "commit", slow_commit)
        landed, resynced = [], []
        committing = threading.Thread(
            target=lambda: landed.append(service.commit_labels(cats.id, message="second", author="ana")), daemon=True)
        committing.start()
        try:
            assert in_store.wait(60)
            with backend.commit("labels", "master", message="a note", author="bo") as c:  # another writer
                c.put_files([("/README.md", b"labels of images\n")])
            note = backend.inspect_branch("labels", "master").head.id
            resyncing = threading.Thread(target=lambda: resynced.append(outcome(
                lambda: service.resync(dogs.id, "master"), 240)), daemon=True)
            resyncing.start()
            while service._lock.acquire(blocking=False):  # until the resync holds the service's lock
                service._lock.release()
                assert resyncing.is_alive()
                time.sleep(0.05)
            pending = outcome(lambda: service.pending(cats.id))
            assert not isinstance(pending, BaseException), repr(pending)
            assert pending.added == (label_path("/cats/002.png"),) and not pending.modified, pending
            assert [s.id for s in outcome(service.list_sessions)] and committing.is_alive()
        finally:
            release.set()
            committing.join(120)
        resyncing.join(120)
        # neither waits for the other: the commit records what it landed without the resync's lock
        assert not committing.is_alive() and not resyncing.is_alive() and landed
        # it ended on its own: nothing of the dogs' session to replace, from the other writer's commit
        assert resynced and not isinstance(resynced[0], BaseException), resynced
        assert (resynced[0]["restored"], resynced[0]["removed"]) == (0, 0), resynced
        assert resynced[0]["commit"] == note
        assert service.pending(cats.id).count == 0
        labels = {i.path for i in backend.walk("labels", "master") if not i.is_dir}
        assert labels == {"/README.md", label_path("/cats/001.png"), label_path("/cats/002.png")}
    finally:
        mounts.close()


#: Data files whose names a label file must keep as they are.
FLOOD_NAMES = ["ça va 01.png", "a+b&c=d 02.png", "日本 03.png", "with  two spaces 04.png", "50% 05.png",
               "#hash 06.png", "quote's 07.png", "(paren) 08.png", "ümlaut 09.png", "dash-10.png",
               "semi;colon 11.png", "tilde~12.png"]


async def test_a_flood_of_label_commits_while_the_panel_polls(api, pachls_state, monkeypatch):
    """Three people press Commit labels as they annotate, while the panel polls pending labels and the
    sessions: every poll answers, every annotation is committed exactly once, under its own name,
    and the label commit locks go with the session."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = pachls_state.backend
    backend.create_repo("images")
    pngs = [raw for _, raw in sorted(demo_files())]
    with backend.commit("images", "master", message="flood") as c:
        c.put_files([(f"/flood/{name}", pngs[i % len(pngs)]) for i, name in enumerate(FLOOD_NAMES)])
    await wait_running(api)
    status, session = await api("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/flood/*.png",
        "template": "image-classification", "classes": ["cat", "dog"]})
    assert status == 201, session
    sid = session["id"]
    client = sdk(pachls_state.labeling.label_studio)
    tasks = tasks_by_path(client, session["project_id"])
    assert sorted(tasks) == sorted(f"/flood/{name}" for name in FLOOD_NAMES)
    to_annotate = sorted(tasks)
    made: dict[str, int] = {}  # data path -> annotation id
    pressed: list[int] = []
    done = asyncio.Event()
    polls: list[tuple[str, int]] = []

    async def labeler(name: str) -> None:
        while to_annotate:
            for path in [to_annotate.pop() for _ in range(min(2, len(to_annotate)))]:
                made[path] = (await asyncio.to_thread(choose, client, tasks[path], "cat")).id
            status, body = await api("POST", f"labeling/sessions/{sid}/commit", {"message": f"{name}'s round"})
            # landed, or a press that found its annotations committed by another's round
            assert status == 201 or (status == 400 and "nothing to commit" in body["message"]), (status, body)
            pressed.append(status)

    async def panel() -> None:
        while not done.is_set():
            for route in (f"labeling/sessions/{sid}/pending", "labeling/sessions", "labeling"):
                status, body = await api("GET", route)
                polls.append((route, status))
                assert status == 200, (route, body)
            await asyncio.sleep(0.05)

    poller = asyncio.ensure_future(panel())
    await asyncio.gather(labeler("ana"), labeler("bo"), labeler("cy"))
    status, body = await api("POST", f"labeling/sessions/{sid}/commit", {"message": "the rest"})
    assert status in (201, 400), body
    done.set()
    await poller

    assert pressed.count(201) >= 1 and len(polls) >= 3
    log = backend.list_commits("labels", "master")
    added: list[str] = []
    for newer, older in zip(log, [*log[1:], None]):
        changes = backend.diff("labels", older.id if older else None, newer.id)
        assert all(d.change == "added" for d in changes), changes  # nothing rewritten: no second commit of one
        added += [d.path for d in changes]
    assert sorted(added) == sorted(label_path(p) for p in made)  # each exactly once
    for path, annotation in made.items():  # under its own name, with its own annotation
        label = decode(backend.get_file("labels", "master", label_path(path)))
        assert label["data"]["path"] == path and [a["id"] for a in label["annotations"]] == [annotation]
    status, body = await api("GET", f"labeling/sessions/{sid}/pending")
    assert status == 200 and body["count"] == 0, body

    status, body = await api("DELETE", f"labeling/sessions/{sid}")
    assert status == 200, body
    assert pachls_state.labeling._commit_locks == {}  # the session's commit lock went with it


def test_a_label_commit_pressed_during_a_resync_waits_for_it_and_never_commits_a_half_done_resync(
        world, label_studio):
    """A resync deletes a data file's annotations one by one, then recreates the label file's: a label
    commit reading the project in between would commit what is left at that moment (one of the two
    annotations; none: the label file's deletion)."""
    backend, mounts, service = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/00[12].png",
                                     template="image-classification", classes=["cat", "dog"], user="ana")
    client = sdk(label_studio)
    task = tasks_by_path(client, session.project_id)["/cats/001.png"]
    choose(client, task, "cat")
    first = service.commit_labels(session.id, message="first round", author="ana")
    choose(client, task, "dog")  # a second annotation: the resync replaces both with the committed one

    deleted, release, commit_reads = threading.Event(), threading.Event(), threading.Event()
    real_request, real_pending = service._request, service._pending

    def request(method, path, **kwargs):
        answer = real_request(method, path, **kwargs)
        if method == "DELETE" and path.startswith("/api/annotations/"):
            deleted.set()
            assert release.wait(120)
        return answer

    def pending(one, deadline):
        if deadline is service.deadlines.commit:
            commit_reads.set()
        return real_pending(one, deadline)

    service._request, service._pending = request, pending
    resynced: list = []
    resyncing = threading.Thread(target=lambda: resynced.append(outcome(
        lambda: service.resync(session.id, "master", commit=first.id, confirm=True), 180)), daemon=True)
    resyncing.start()
    assert deleted.wait(60)
    committed: list = []
    committing = threading.Thread(target=lambda: committed.append(outcome(
        lambda: service.commit_labels(session.id, message="pressed mid-resync", author="ana"), 180)), daemon=True)
    committing.start()
    if commit_reads.wait(10):  # it did not wait: let it finish while the resync is held
        committing.join(60)
    release.set()
    resyncing.join(180)
    committing.join(180)
    assert resynced and resynced[0]["removed"] == 2 and resynced[0]["restored"] == 1, resynced
    # the commit waited for the resync, then found the project as committed: nothing to commit
    assert committed and isinstance(committed[0], InvalidArgument), committed
    assert backend.inspect_branch("labels", "master").head.id == first.id
    label = decode(backend.get_file("labels", "master", label_path("/cats/001.png")))
    assert [a["result"][0]["value"]["choices"] for a in label["annotations"]] == [["cat"]]


def a_session(service: LabelingService) -> Session:
    """A session as the service keeps it (for what is decided before any call to Label Studio)."""
    session = Session(id=uuid.uuid4().hex[:12], title="t", data_repo="images", data_branch="master",
                      data_commit="0" * 32, glob="/**", labels_repo="labels", labels_branch="master",
                      project_id=7, data_mount="images_0", labels_mount="labels", data_key="image",
                      created_by="ana", created=time.time())
    service._sessions[session.id] = session
    return session


def test_a_label_commit_of_a_big_round_gets_three_times_its_last_export_up_to_five_minutes(tmp_path):
    """Label Studio builds an export whole before its first byte: a round of ~12,000 annotated tasks
    takes over the commit's 60 s on a loaded machine, so its read deadline follows the last export."""
    service = LabelingService(lambda: None, lambda: None, None, tmp_path / "labeling")
    session = a_session(service)
    asked: list[CallDeadline] = []
    service._ls = lambda deadline: ("http://label-studio.invalid", {})
    service._send = lambda url, headers, method, path, *, deadline, **kwargs: asked.append(deadline) or []
    for took in (10.0, 70.0, 200.0):
        service._export_seconds[session.id] = (took, time.monotonic())
        service._export(session, deadline=COMMIT)
    service._export_seconds[session.id] = (10.0, time.monotonic())
    service._export(session, deadline=POLL)
    assert [d.timeout.read for d in asked] == [60.0, 210.0, 300.0, 30.0]


@pytest.fixture
def export_stalls():
    """A faithful HTTP stand-in for a team Label Studio whose exports never come: it answers
    ``GET /api/users/`` (an empty user list, as Label Studio's JSON) and accepts
    ``GET /api/projects/<id>/export`` without ever answering it. Yields its URL and the count of
    exports asked."""
    asked = {"exports": 0}
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            if self.path.startswith("/api/users/"):
                body = b"[]"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path.startswith("/api/projects/") and "/export" in self.path:
                asked["exports"] += 1
                stop.wait()  # building an export that never ends
            else:
                self.send_error(404)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="export-stalls", daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    stop.set()
    server.shutdown()
    server.server_close()


def test_a_poll_whose_export_runs_out_waits_longer_next_time_then_stops_asking(tmp_path, export_stalls):
    """A session whose export takes longer than a poll's first deadline (no history after a restart)
    timed out on every poll, each leaving Label Studio building an export nobody read."""
    url, asked = export_stalls
    poll = CallDeadline("poll", ready=1.0, timeout=httpx.Timeout(1.0, connect=1.0), read_most=4.0)
    store = LocalBackend(tmp_path / "store")
    try:
        service = LabelingService(lambda: store, lambda: None, ExternalLabelStudio(url, "token"),
                                  tmp_path / "labeling", deadlines=Deadlines(poll=poll))
        session = a_session(service)
        deadlines = []
        for _ in range(3):
            error = outcome(lambda: service.pending(session.id))
            assert_timed_out(error, "poll")
            deadlines.append(error.details["deadline"])
        assert deadlines == [1.0, 3.0, 4.0]  # 3 x what ran out, up to the poll's longest
        error = outcome(lambda: service.pending(session.id))
        assert isinstance(error, Unavailable) and error.details["label_studio"] == "slow_export", repr(error)
        assert error.details["last_export_seconds"] == 4.0 and "Label Studio" in error.message
        assert asked["exports"] == 3  # no export started for the poll that gave up at once
    finally:
        store.close()


def test_a_poll_ending_after_its_session_was_deleted_leaves_no_export_timing(tmp_path):
    service = LabelingService(lambda: None, lambda: None, None, tmp_path / "labeling")
    session = a_session(service)
    service._ls = lambda deadline: ("http://label-studio.invalid", {})

    def deleted_meanwhile(url, headers, method, path, *, deadline, **kwargs):
        service.delete_session(session.id, force=True)
        return []

    service._send = deleted_meanwhile
    service._export(session, deadline=POLL)
    assert service._export_seconds == {}


class OpaqueHashes:
    """The embedded store as a cluster answers for it: hashes opaque (not the bytes' sha256), and
    counting the label files read."""

    def __init__(self, store: LocalBackend) -> None:
        self.store, self.reads = store, 0

    def walk(self, *args, **kwargs):
        return [dataclasses.replace(i, hash_kind=OPAQUE) for i in self.store.walk(*args, **kwargs)]

    def get_file(self, *args, **kwargs):
        self.reads += 1
        return self.store.get_file(*args, **kwargs)


def test_label_files_are_read_again_only_when_their_store_hash_changed(tmp_path):
    store = LocalBackend(tmp_path / "store")
    try:
        store.create_repo("labels")
        with store.commit("labels", "master", message="labels") as c:
            c.put_files([(label_path(f"/images/{n:03}.png"), b'{"n": %d}' % n) for n in range(40)])
        opaque = OpaqueHashes(store)
        service = LabelingService(lambda: opaque, lambda: None, None, tmp_path / "labeling")
        session = a_session(service)
        first = service._committed_digests(session)
        assert opaque.reads == 40 and len(first) == 40
        assert service._committed_digests(session) == first and opaque.reads == 40  # nothing read again
        with store.commit("labels", "master", message="one changed") as c:
            c.put_files([(label_path("/images/007.png"), b'{"n": "seven"}')])
        changed = service._committed_digests(session)
        assert opaque.reads == 41 and changed.pop(label_path("/images/007.png")) != first.pop(
            label_path("/images/007.png")) and changed == first
        service.delete_session(session.id, force=True)
        assert service._digests == {}  # went with the branch's last session
    finally:
        store.close()
