"""Label Studio and the Pachyderm API failing in the middle of a labeling round.

Real parts: a managed Label Studio process (SIGSTOPped so a call is surely in flight, then SIGKILLed),
its watchdog, a Jupyter server, mounts, and the Pachyderm-API gRPC server stopped at a chosen call.
Each failure answers a typed error saying what is going on, nothing acknowledged is lost, no commit is
half-made, and the retry lands the round as one commit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import pytest
from label_studio_sdk import LabelStudio

from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.labeling.session import LabelingService
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import open_backend
from jupyterlab_pachls.pfs.errors import Unavailable
from labeling.test_proxy import ls_copy, wait_running  # noqa: F401  (fixture: this server's own LS)
from stoppable_cluster import Cluster, StopAt, eventually


@pytest.fixture
def pachls_config(ls_copy):  # noqa: F811
    return {"PachlsConfig": {"label_studio_dir": str(ls_copy)}}


def sdk(ls) -> LabelStudio:
    return LabelStudio(base_url=ls.url, api_key=ls.credentials.token)


def choose(client: LabelStudio, task_id: int, label: str):
    return client.annotations.create(id=task_id, result=[{"from_name": "choice", "to_name": "image",
                                                          "type": "choices", "value": {"choices": [label]}}])


def tasks_by_path(client: LabelStudio, project: int) -> dict[str, int]:
    return {t.data["pachls_path"]: t.id for t in client.tasks.list(project=project)}


def label_files(backend, ref="master") -> set[str]:
    return {i.path for i in backend.walk("labels", ref) if not i.is_dir}


async def test_label_studio_killed_mid_commit_answers_503_then_the_retry_commits_everything(
        api, pachls_state, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="demo") as c:
        c.put_files(demo_files())
    await wait_running(api)
    status, session = await api("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/cats/00[123].png",
        "template": "image-classification", "classes": ["cat", "dog"]})
    assert status == 201, session
    ls = pachls_state.labeling.label_studio
    client = sdk(ls)
    tasks = tasks_by_path(client, session["project_id"])
    choose(client, tasks["/cats/001.png"], "cat")  # acknowledged by Label Studio: must not be lost
    choose(client, tasks["/cats/002.png"], "dog")
    before = backend.inspect_branch("labels", "master").head
    restarts = ls.status().restarts

    # freeze Label Studio so the commit's export is surely in flight, then kill it
    victim = ls._process
    os.killpg(victim.pid, signal.SIGSTOP)
    call = asyncio.ensure_future(api("POST", f"labeling/sessions/{session['id']}/commit", {"message": "round"}))
    await asyncio.sleep(1.0)
    assert not call.done()
    os.killpg(victim.pid, signal.SIGKILL)
    status, body = await call
    assert status == 503, body
    assert body["error"] == "unavailable" and body["details"]["label_studio"] == "restarting"
    assert "restarting" in body["message"] and "Try again" in body["message"]
    assert backend.inspect_branch("labels", "master").head == before  # no commit, not half of one
    mounts = pachls_state.mounts
    assert mounts.status(session["labels_mount"]).pending == 0  # nothing was written to the mount

    # the panel's poll says the same while the watchdog restarts it (it does not wait for the restart)
    status, body = await api("GET", "labeling")
    assert body["label_studio"]["state"] == "starting"
    status, body = await api("GET", f"labeling/sessions/{session['id']}/pending")
    assert status in (200, 503), body
    if status == 503:
        assert body["details"]["label_studio"] == "restarting"

    # the retry waits for the restart and commits both acknowledged annotations as ONE commit
    status, landed = await api("POST", f"labeling/sessions/{session['id']}/commit", {"message": "round"})
    assert status == 201, landed
    assert landed["parent"] == (before.id if before else None)
    assert label_files(backend) == {"/cats/001.png.json", "/cats/002.png.json"}
    assert ls.status().state == "running" and ls.status().restarts == restarts + 1
    status, body = await api("GET", f"labeling/sessions/{session['id']}/pending")
    assert status == 200 and body["count"] == 0


def test_a_dead_label_studio_is_restarted_once_even_when_a_call_asks_for_it(label_studio):
    """The watchdog restarts; ``start()`` from a request meanwhile must not spawn a second process
    (two on one port: one orphaned, the other failing to bind and counted as crashes)."""
    before = label_studio.status().restarts
    victim = label_studio._process
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)
    label_studio.start()  # what a request does first
    error = label_studio.unavailable()
    assert error.details["label_studio"] == "restarting" and "restarting" in error.message
    label_studio.wait_ready(300)
    status = label_studio.status()
    assert status.state == "running" and status.restarts == before + 1


@pytest.fixture
def pachyderm_world(tmp_path, label_studio, ls_document_root, monkeypatch):
    """A labeling service on the Pachyderm backend, through a Pachyderm-API server that can be stopped."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    cluster = Cluster(tmp_path / "served")
    backend = open_backend({"kind": "pachyderm", "pachd_address": cluster.address, "connect_timeout": 2.0})
    backend.create_repo("images")
    with backend.commit("images", "master", message="demo images") as c:
        c.put_files(demo_files())
    mounts = MountManager(backend, ls_document_root / uuid.uuid4().hex[:8], tmp_path / "mount-state", fuse=False)
    service = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")
    yield cluster, backend, mounts, service
    mounts.close()
    backend.close()
    cluster.close()


def test_pachyderm_api_stopped_mid_label_commit_then_the_retry_commits_what_label_studio_holds(
        pachyderm_world, label_studio):
    cluster, backend, mounts, service = pachyderm_world
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/00[123].png",
                                     template="image-classification", classes=["cat", "dog"])
    client = sdk(label_studio)
    tasks = tasks_by_path(client, session.project_id)
    choose(client, tasks["/cats/001.png"], "cat")
    second = choose(client, tasks["/cats/002.png"], "dog")
    before = backend.inspect_branch("labels", "master").head

    # the server stops when the label commit opens its commit: the label files are written, staged
    cluster.stop()
    stop = StopAt("StartCommit")
    cluster.start(stop)
    with pytest.raises(Unavailable) as info:
        service.commit_labels(session.id, message="round 1", author="ana")
    assert stop.fired.is_set() and info.value.details["address"] == cluster.address
    staged = {c.path for c in mounts.changes(session.labels_mount).changes}
    assert staged == {"/cats/001.png.json", "/cats/002.png.json"}  # kept, nothing lost

    # meanwhile the labeler changes their mind: 002 has no annotation any more, 003 has one
    client.annotations.delete(id=second.id)
    choose(client, tasks["/cats/003.png"], "cat")

    cluster.start()
    assert eventually(lambda: backend.inspect_branch("labels", "master")).head == before  # no half-commit
    landed = service.commit_labels(session.id, message="round 1", author="ana")
    assert landed.parent == (before.id if before else None)
    # what Label Studio holds now, not the stale staged 002 (a label nobody gives any more)
    assert label_files(backend) == {"/cats/001.png.json", "/cats/003.png.json"}
    assert service.pending(session.id).count == 0 and mounts.status(session.labels_mount).pending == 0
    assert [b.name for b in cluster.served.list_branches("labels")] == ["master"]  # no staging left
