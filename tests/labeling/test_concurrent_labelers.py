"""Two labelers committing label rounds at once (real Label Studio, real mounts, real store).

What a Label Studio user expects, and what these tests hold the product to:

* **Two annotators in one session** (one Label Studio project, two accounts) press *Commit
  labels* at the same moment: one round lands as ONE commit holding every annotation made so far
  (both annotators'), the other press waits for it and then finds nothing left to commit (or
  commits what was annotated meanwhile); nothing is lost, nothing is committed twice, and a later press
  commits whatever was annotated after the first one started.
* **Two sessions writing the same labels branch** (``images@master`` split by glob, both into
  ``labels@master``) commit at once: both rounds land, each as its own commit with exactly its
  own label files, its own provenance and annotators; no spurious conflict (the files differ).
* **A conflict** (the label files were changed on the branch meanwhile) names the paths, commits
  nothing and keeps every annotation; the user's way out (discard the labels mount's staged
  files, refresh it, commit labels again) lands the round.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from label_studio_sdk import LabelStudio

from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.labeling.session import LabelingService
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import Conflict, InvalidArgument, LocalBackend


@pytest.fixture(params=["fuse", "no-fuse"])
def world(request, tmp_path, label_studio, ls_document_root, monkeypatch):
    if request.param == "no-fuse":
        monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    else:
        from jupyterlab_pachls.mount import fuse_status

        available, why = fuse_status()
        if not available:
            pytest.skip(f"FUSE is not available here: {why}")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("images")
    with backend.commit("images", "master", message="demo images", author="demo") as c:
        c.put_files(demo_files())
    mounts = MountManager(backend, ls_document_root / uuid.uuid4().hex[:8], tmp_path / "mount-state",
                          fuse=request.param == "fuse")
    service = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")
    yield backend, mounts, service, c.finished
    mounts.close()
    backend.close()


def sdk(label_studio) -> LabelStudio:
    return LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)


def annotator(client: LabelStudio, email: str) -> int:
    for user in client.users.list():
        if user.email == email:
            return user.id
    return client.users.create(email=email, username=email.split("@")[0], first_name=email[:2]).id


def choose(client: LabelStudio, task_id: int, label: str, user: int | None = None):
    extra = {"completed_by": user} if user is not None else {}
    return client.annotations.create(
        id=task_id, result=[{"from_name": "choice", "to_name": "image", "type": "choices",
                             "value": {"choices": [label]}}], lead_time=1.0,
        request_options={"additional_body_parameters": extra},
    )


def tasks_by_path(client: LabelStudio, project: int) -> dict[str, int]:
    return {t.data["pachls_path"]: t.id for t in client.tasks.list(project=project)}


def at_once(*calls):
    """Run the calls in threads released together; (result or exception) per call."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001  (returned to the test)
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def labels_at(backend, ref: str) -> dict[str, list]:
    """label path -> [(annotator, choices)] of every label file at ``ref``."""
    out = {}
    for info in backend.walk("labels", ref):
        if info.is_dir:
            continue
        document = json.loads(backend.get_file("labels", ref, info.path))
        out[info.path] = sorted((a["created_by"], tuple(a["result"][0]["value"]["choices"]))
                                for a in document["annotations"])
    return out


def test_two_annotators_press_commit_at_once(world, label_studio):
    backend, mounts, service, _ = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/*.png",
                                      template="image-classification", classes=["cat", "dog"], user="ana")
    client = sdk(label_studio)
    tasks = tasks_by_path(client, session.project_id)
    bo = annotator(client, "bo@example.com")
    admin = label_studio.credentials.email
    choose(client, tasks["/cats/001.png"], "cat")
    choose(client, tasks["/cats/002.png"], "dog", user=bo)
    choose(client, tasks["/cats/003.png"], "cat", user=bo)
    choose(client, tasks["/cats/003.png"], "dog")

    first, second = at_once(lambda: service.commit_labels(session.id, message="ana's round", author="ana"),
                            lambda: service.commit_labels(session.id, message="bo's round", author="bo"))
    landed = [r for r in (first, second) if not isinstance(r, BaseException)]
    refused = [r for r in (first, second) if isinstance(r, BaseException)]
    assert len(landed) >= 1, f"neither press landed: {refused}"
    for exc in refused:  # a clear typed refusal, never a crash
        assert isinstance(exc, (Conflict, InvalidArgument)), repr(exc)
    log = backend.list_commits("labels", "master")
    assert sorted(c.id for c in log) == sorted(c.id for c in landed)  # nothing else landed
    expected = {
        "/cats/001.png.json": [(admin, ("cat",))],
        "/cats/002.png.json": [("bo@example.com", ("dog",))],
        "/cats/003.png.json": sorted([(admin, ("dog",)), ("bo@example.com", ("cat",))]),
    }
    assert labels_at(backend, "master") == expected  # every annotation, by both annotators
    if len(landed) == 1:  # one round, all of it in one commit
        assert {d.path for d in backend.diff("labels", None, landed[0].id)} >= set(expected)
    assert service.pending(session.id).count == 0
    assert mounts.status(session.labels_mount).pending == 0

    # the refused press, pressed again: nothing left to commit
    with pytest.raises(InvalidArgument, match="nothing to commit"):
        service.commit_labels(session.id, message="again", author="bo")
    # annotations made after the round land in the next one
    choose(client, tasks["/cats/004.png"], "cat", user=bo)
    later = service.commit_labels(session.id, message="later", author="bo")
    assert {d.path for d in backend.diff("labels", log[0].id, later.id)} == {"/cats/004.png.json"}
    print(f"\ntwo presses at once: {len(landed)} landed, refused: {[type(e).__name__ for e in refused]}")


@pytest.mark.parametrize("rounds", [4])
def test_two_sessions_on_one_labels_branch_commit_at_once(world, label_studio, rounds):
    backend, mounts, service, data_commit = world
    cats = service.create_session(data="images@master", labels="labels@master", glob="/cats/*.png",
                                  template="image-classification", classes=["cat", "dog"], user="ana")
    dogs = service.create_session(data="images@master", labels="labels@master", glob="/dogs/*.png",
                                  template="image-classification", classes=["cat", "dog"], user="bo")
    client = sdk(label_studio)
    bo = annotator(client, "bo@example.com")
    cat_tasks, dog_tasks = tasks_by_path(client, cats.project_id), tasks_by_path(client, dogs.project_id)
    admin = label_studio.credentials.email
    expected: dict[str, list] = {}
    for r in range(rounds):
        # each labeler annotates one more file of their own session, then both commit at once
        cat_path, dog_path = sorted(cat_tasks)[r], sorted(dog_tasks)[r]
        choose(client, cat_tasks[cat_path], "cat")
        choose(client, dog_tasks[dog_path], "dog", user=bo)
        expected[cat_path + ".json"] = [(admin, ("cat",))]
        expected[dog_path + ".json"] = [("bo@example.com", ("dog",))]
        head = backend.inspect_branch("labels", "master").head
        a, b = at_once(lambda: service.commit_labels(cats.id, message=f"cats {r}", author="ana"),
                       lambda: service.commit_labels(dogs.id, message=f"dogs {r}", author="bo"))
        failures = [x for x in (a, b) if isinstance(x, BaseException)]
        assert not failures, f"round {r}: a label commit was refused or failed: {failures!r}"
        # two commits, one per session, each with exactly its own label file and its own metadata
        new = backend.list_commits("labels", "master", limit=2)
        assert {c.id for c in new} == {a.id, b.id} and new[-1].parent == (head.id if head else None)
        assert {d.path for d in backend.diff("labels", a.parent, a.id)} == {cat_path + ".json"}, (
            f"round {r}: the cats commit holds other files")
        assert {d.path for d in backend.diff("labels", b.parent, b.id)} == {dog_path + ".json"}, (
            f"round {r}: the dogs commit holds other files")
        assert a.metadata["pachls.annotators"] == admin
        assert b.metadata["pachls.annotators"] == "bo@example.com"
        assert (a.author, b.author) == ("ana", "bo")
        assert labels_at(backend, "master") == expected  # no label lost
        assert service.pending(cats.id).count == 0 and service.pending(dogs.id).count == 0


def test_a_label_conflict_names_its_paths_and_the_retry_lands(world, label_studio):
    backend, mounts, service, _ = world
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/00[12].png",
                                     template="image-classification", classes=["cat", "dog"], user="ana")
    client = sdk(label_studio)
    tasks = tasks_by_path(client, session.project_id)
    choose(client, tasks["/cats/001.png"], "cat")
    choose(client, tasks["/cats/002.png"], "dog")
    with backend.commit("labels", "master", message="someone else", author="eve") as c:
        c.put_file("/cats/001.png.json", b"{}")
        c.put_file("/elsewhere.txt", b"not a label")
    with pytest.raises(Conflict) as info:
        service.commit_labels(session.id, message="mine", author="ana")
    assert info.value.details["paths"] == ["/cats/001.png.json"]  # the clashing path, only it
    assert "resync" in info.value.message and f"discard and refresh the labels mount ({session.labels_mount})" \
        in info.value.message  # the message names both ways out
    assert backend.inspect_branch("labels", "master").head.id == c.finished.id  # nothing committed
    assert service.pending(session.id).count == 2  # every annotation still pending

    # the way out: drop the staged label files, move the labels mount to the head, commit again
    mounts.discard(session.labels_mount)
    mounts.refresh(session.labels_mount)
    landed = service.commit_labels(session.id, message="mine, after theirs", author="ana")
    assert landed.parent == c.finished.id
    assert {d.path for d in backend.diff("labels", c.finished.id, landed.id)} == {
        "/cats/001.png.json", "/cats/002.png.json"}
    assert json.loads(backend.get_file("labels", "master", "/cats/001.png.json"))["annotations"][0]["result"][0][
        "value"]["choices"] == ["cat"]
    assert backend.get_file("labels", "master", "/elsewhere.txt") == b"not a label"  # theirs kept
    assert service.pending(session.id).count == 0


def test_one_sessions_refused_round_does_not_leak_into_another(world, label_studio):
    """Sessions on one labels branch share its read-write mount: label files a refused round left
    staged there must neither ride along in another session's commit nor block it."""
    backend, mounts, service, _ = world
    cats = service.create_session(data="images@master", labels="labels@master", glob="/cats/00[12].png",
                                  template="image-classification", classes=["cat", "dog"], user="ana")
    dogs = service.create_session(data="images@master", labels="labels@master", glob="/dogs/*.png",
                                  template="image-classification", classes=["cat", "dog"], user="bo")
    client = sdk(label_studio)
    dog_path = sorted(tasks_by_path(client, dogs.project_id))[0]
    choose(client, tasks_by_path(client, dogs.project_id)[dog_path], "dog")
    with backend.commit("labels", "master", message="someone else", author="eve") as c:
        c.put_file(dog_path + ".json", b"{}")
    with pytest.raises(Conflict):
        service.commit_labels(dogs.id, message="dogs", author="bo")  # refused; its label file stays staged

    choose(client, tasks_by_path(client, cats.project_id)["/cats/001.png"], "cat")
    try:
        landed = service.commit_labels(cats.id, message="cats", author="ana")
    except Conflict as exc:
        pytest.fail(f"the cats round was refused for the dogs session's paths: {exc.details.get('paths')}")
    assert {d.path for d in backend.diff("labels", c.finished.id, landed.id)} == {"/cats/001.png.json"}, (
        "the cats commit carries the dogs session's staged label file")
