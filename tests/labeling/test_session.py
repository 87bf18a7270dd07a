"""A labeling round end to end: real Label Studio, real mounts, real store, one label commit per round."""

from __future__ import annotations

import json
import os
import signal
import uuid

import httpx
import pytest
from label_studio_sdk import LabelStudio

from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.labeling.session import LabelingService
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import Conflict, InvalidArgument, LocalBackend, NotFound, Provenance, open_backend
from jupyterlab_pachls.pfs.server import make_server


@pytest.fixture
def pachyderm_backend(tmp_path):
    """PachydermBackend over real gRPC to the Pachyderm-API server (serving an embedded store)."""
    served = LocalBackend(tmp_path / "served")
    server, port = make_server(served, "127.0.0.1:0")
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"})
    yield backend
    backend.close()
    server.stop(grace=None).wait()
    served.close()


@pytest.fixture(params=["local-fuse", "local-no-fuse", "pachyderm-fuse"])
def world(request, tmp_path, label_studio, ls_document_root, monkeypatch):
    """A store with demo images, mounts inside Label Studio's document root, and the service."""
    kind, presentation = request.param.split("-", 1)
    if presentation == "no-fuse":
        monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = request.getfixturevalue("pachyderm_backend") if kind == "pachyderm" else LocalBackend(
        tmp_path / "store")
    backend.create_repo("images")
    with backend.commit("images", "master", message="demo images", author="demo") as c:
        c.put_files(demo_files())
    mounts = MountManager(backend, ls_document_root / uuid.uuid4().hex[:8], tmp_path / "mount-state",
                          fuse=presentation == "fuse")
    service = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")
    yield backend, mounts, service, c.finished
    mounts.close()
    backend.close()


def sdk(label_studio) -> LabelStudio:
    return LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)


def second_annotator(client: LabelStudio) -> int:
    for user in client.users.list():
        if user.email == "bo@example.com":
            return user.id
    return client.users.create(email="bo@example.com", username="bo", first_name="Bo").id


def choose(client: LabelStudio, task_id: int, label: str, user: int | None = None):
    """An annotation through label-studio-sdk, as the admin or as another Label Studio user."""
    extra = {"completed_by": user} if user is not None else {}
    return client.annotations.create(
        id=task_id, result=[{"from_name": "choice", "to_name": "image", "type": "choices",
                             "value": {"choices": [label]}}], lead_time=1.5,
        request_options={"additional_body_parameters": extra},
    )


def tasks_by_path(client: LabelStudio, project: int) -> dict[str, int]:
    return {t.data["pachls_path"]: t.id for t in client.tasks.list(project=project)}


def test_a_labeling_round_is_one_commit_with_provenance(world, label_studio):
    backend, mounts, service, data_commit = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/*.png",
                                     template="image-classification", classes=["cat", "dog"], user="ana")
    assert session.data_commit == data_commit.id and session.tasks == 6
    assert backend.inspect_repo("labels").branches == ("master",)
    client = sdk(label_studio)
    tasks = tasks_by_path(client, session.project_id)
    assert sorted(tasks) == [f"/cats/{i:03d}.png" for i in range(1, 7)]

    # Label Studio reads the image bytes through the read-only mount
    task = client.tasks.get(id=tasks["/cats/001.png"])
    served = httpx.get(label_studio.url + task.data["image"],
                       headers={"Authorization": f"Token {label_studio.credentials.token}"})
    assert served.status_code == 200
    assert served.content == backend.get_file("images", data_commit.id, "/cats/001.png")

    assert service.pending(session.id).count == 0
    with pytest.raises(InvalidArgument, match="nothing to commit"):
        service.commit_labels(session.id, message="empty", author="ana")

    bo = second_annotator(client)
    choose(client, tasks["/cats/001.png"], "cat")
    choose(client, tasks["/cats/002.png"], "dog", user=bo)
    first = choose(client, tasks["/cats/003.png"], "cat", user=bo)
    pending = service.pending(session.id)
    assert pending.added == ("/cats/001.png.json", "/cats/002.png.json", "/cats/003.png.json")
    assert pending.annotators == ("bo@example.com", label_studio.credentials.email)

    before = backend.inspect_branch("labels", "master").head
    landed = service.commit_labels(session.id, message="round 1", author="ana")
    assert landed.parent == (before.id if before else None)
    assert (landed.message, landed.author) == ("round 1", "ana")
    assert landed.provenance == (Provenance("images", data_commit.id, "master"),)
    assert landed.metadata["pachls.annotators"] == f"bo@example.com,{label_studio.credentials.email}"
    assert [c.id for c in backend.list_commits("labels", "master")][0] == landed.id
    files = {i.path for i in backend.walk("labels", "master") if not i.is_dir}
    assert files == {"/cats/001.png.json", "/cats/002.png.json", "/cats/003.png.json"}
    document = json.loads(backend.get_file("labels", "master", "/cats/002.png.json"))
    assert document["data"] == {"repo": "images", "commit": data_commit.id, "path": "/cats/002.png"}
    assert [(a["created_by"], a["result"][0]["value"]["choices"]) for a in document["annotations"]] == [
        ("bo@example.com", ["dog"])]
    assert service.pending(session.id).count == 0
    assert mounts.status(session.labels_mount).pending == 0

    # round 2: one update, one deletion -> exactly those changes
    client.annotations.update(id=first.id, result=[{"from_name": "choice", "to_name": "image",
                                                    "type": "choices", "value": {"choices": ["dog"]}}])
    for annotation in client.annotations.list(id=tasks["/cats/001.png"]):
        client.annotations.delete(id=annotation.id)
    pending = service.pending(session.id)
    assert (pending.added, pending.modified, pending.deleted) == ((), ("/cats/003.png.json",),
                                                                  ("/cats/001.png.json",))
    second = service.commit_labels(session.id, message="round 2", author="ana")
    assert second.parent == landed.id
    assert {(d.path, d.change) for d in backend.diff("labels", landed.id, second.id)} == {
        ("/cats/003.png.json", "modified"), ("/cats/001.png.json", "deleted")}
    changes = service.diff("labels", landed.id, second.id)
    assert [(c.path, c.change, c.annotator, c.before, c.after) for c in changes] == [
        ("/cats/001.png", "deleted", label_studio.credentials.email, ("cat",), ()),
        ("/cats/003.png", "modified", "bo@example.com", ("cat",), ("dog",)),
    ]
    blame = service.blame("labels", "master", "/cats/003.png")
    assert [(e.commit, e.annotators, e.labels) for e in blame] == [
        (second.id, ("bo@example.com",), ("dog",)), (landed.id, ("bo@example.com",), ("cat",))]
    assert [e.annotators for e in service.blame("labels", "master", "/cats/001.png")] == [
        (), (label_studio.credentials.email,)]

    # the session is persisted and reopened, not duplicated
    reopened = LabelingService(lambda: backend, lambda: mounts, label_studio, service.state_dir)
    assert [s.id for s in reopened.list_sessions()] == [session.id]
    again = reopened.create_session(data="images@master", labels="labels@master", glob="/cats/*.png",
                                    template="image-classification", classes=["cat", "dog"])
    assert again.id == session.id


@pytest.mark.parametrize("world", ["local-no-fuse"], indirect=True)
def test_a_label_commit_carries_its_config_and_the_chosen_format(world, label_studio):
    """export_format: the labels the commit holds, rendered into /exports/<format>/ of that same commit;
    the labeling config in its metadata."""
    backend, _mounts, service, data_commit = world
    with pytest.raises(InvalidArgument, match="unknown export format"):
        service.create_session(data="images@master", labels="labels@master", template="image-classification",
                               classes=["cat", "dog"], export_format="PNG")
    with pytest.raises(InvalidArgument, match="formats that fit: CSV, JSON_MIN"):  # refused before anything is made
        service.create_session(data="images@master", labels="labels@master", template="image-classification",
                               classes=["cat", "dog"], export_format="COCO")
    assert service.list_sessions() == []
    session = service.create_session(data="images@master", labels="labels@master", glob="/dogs/*.png",
                                     template="image-classification", classes=["cat", "dog"],
                                     export_format="json_min")
    assert session.export_format == "JSON_MIN"
    client = sdk(label_studio)
    tasks = tasks_by_path(client, session.project_id)
    choose(client, tasks["/dogs/001.png"], "dog")
    first = service.commit_labels(session.id, message="round 1", author="ana")
    config = first.metadata["pachls.label_config"]
    assert config.strip() == client.projects.get(id=session.project_id).label_config.strip()
    records = json.loads(backend.get_file("labels", first.id, "/exports/JSON_MIN/labels.json"))
    assert [(r["image"], r["choice"]) for r in records] == [(f"images@{data_commit.id}:/dogs/001.png", "dog")]
    choose(client, tasks["/dogs/002.png"], "cat")
    second = service.commit_labels(session.id, message="round 2", author="ana")
    records = json.loads(backend.get_file("labels", second.id, "/exports/JSON_MIN/labels.json"))
    assert sorted((r["image"], r["choice"]) for r in records) == [
        (f"images@{data_commit.id}:/dogs/001.png", "dog"), (f"images@{data_commit.id}:/dogs/002.png", "cat")]
    # the export never counts as labels: the commit's own export of its labels says the same
    assert {(c.path, c.change) for c in backend.diff("labels", first.id, second.id)} == {
        ("/dogs/002.png.json", "added"), ("/exports/JSON_MIN/labels.json", "modified")}
    # deleting every annotation: the commit deletes the label files and their export, nothing is left behind
    for task in tasks.values():
        for annotation in client.annotations.list(id=task):
            client.annotations.delete(id=annotation.id)
    third = service.commit_labels(session.id, message="round 3: start over", author="ana")
    assert {(c.path, c.change) for c in backend.diff("labels", second.id, third.id)} == {
        ("/dogs/001.png.json", "deleted"), ("/dogs/002.png.json", "deleted"),
        ("/exports/JSON_MIN/labels.json", "deleted")}


def test_new_data_commits_are_imported_on_request(world, label_studio):
    backend, mounts, service, data_commit = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/dogs/*.png",
                                      template="image-classification", classes=["cat", "dog"])
    with backend.commit("images", "master", message="more dogs") as c:
        c.put_file("/dogs/100.png", demo_files()[0][1])
    assert service.data_status(session.id)["behind"] == 1
    updated = service.import_new_data(session.id)
    assert updated.data_commit == c.finished.id and updated.tasks == 7
    assert service.data_status(session.id)["behind"] == 0
    tasks = {t.data["pachls_path"]: t.data["pachls_commit"] for t in sdk(label_studio).tasks.list(
        project=session.project_id)}
    assert tasks["/dogs/100.png"] == c.finished.id and tasks["/dogs/001.png"] == data_commit.id


def test_a_conflicting_label_commit_keeps_everything(world, label_studio):
    backend, mounts, service, _ = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/00[12].png",
                                      template="image-classification", classes=["cat", "dog"])
    client = sdk(label_studio)
    tasks = tasks_by_path(client, session.project_id)
    choose(client, tasks["/cats/001.png"], "cat")
    with backend.commit("labels", "master", message="someone else") as c:
        c.put_file("/cats/001.png.json", b"{}")
    with pytest.raises(Conflict) as info:
        service.commit_labels(session.id, message="mine", author="ana")
    assert "/cats/001.png.json" in json.dumps(info.value.details)
    assert backend.inspect_branch("labels", "master").head.id == c.finished.id
    assert service.pending(session.id).count == 1  # the annotation is still there, still pending


def test_label_studio_killed_mid_session_loses_nothing(world, label_studio):
    backend, mounts, service, _ = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/dogs/001.png",
                                      template="image-classification", classes=["cat", "dog"])
    client = sdk(label_studio)
    choose(client, tasks_by_path(client, session.project_id)["/dogs/001.png"], "dog")
    victim = label_studio._process
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)
    landed = service.commit_labels(session.id, message="after a crash", author="ana")  # waits for the restart
    assert backend.get_file("labels", landed.id, "/dogs/001.png.json")
    with pytest.raises(NotFound):
        service.get("nope")
