"""A team round again: nobody logs in as someone else, Label Studio's data is its owner's alone,
a new session starts from the committed labels, and a label file is the same in every project.

A real Jupyter server whose identity provider names each request's user (as JupyterHub's does),
its managed Label Studio (a copy of the session's migrated database, made world-readable first as
an earlier version left it), ``label_studio_sdk`` as each person, everything else through REST.
"""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
from label_studio_sdk import LabelStudio

from jupyterlab_pachls.demo import demo_files

from .test_authorship import CHOICES, HeaderUserProvider, as_user, choice, logged_in  # noqa: F401
from .test_proxy import ls_copy, wait_running  # noqa: F401


@pytest.fixture
def pachls_author():
    return {}  # each request's Jupyter user is its author


@pytest.fixture
def jp_server_config(jp_server_config, ls_copy):  # noqa: F811
    # as an earlier version left it: a 0755 data dir, a 0644 database
    ls_copy.chmod(0o755)
    for entry in ls_copy.iterdir():
        entry.chmod(0o644)
    config = dict(jp_server_config)
    config["ServerApp"] = {**config["ServerApp"], "identity_provider_class": HeaderUserProvider}
    config["PachlsConfig"] = {"label_studio_dir": str(ls_copy), "user_email_domain": "example.com"}
    return config


def readable_by_others(root) -> list[str]:
    """Everything below ``root`` (and itself) that a user other than its owner may read or enter."""
    found = [] if stat.S_IMODE(root.stat().st_mode) & 0o077 == 0 else [f"{root} {oct(root.stat().st_mode)}"]
    for entry in root.rglob("*"):
        if not entry.is_symlink() and stat.S_IMODE(entry.stat().st_mode) & 0o077:
            found.append(f"{entry.relative_to(root)} {oct(stat.S_IMODE(entry.stat().st_mode))}")
    return found


async def test_a_person_only_ever_gets_their_own_label_studio_account(as_user, api, pachls_state):  # noqa: F811
    ana, bo = as_user("ana"), as_user("bo")
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    status, bo_login = await bo("GET", "labeling/login")
    assert status == 200 and bo_login["email"] == "bo@example.com", bo_login

    # Bo's email, in any case, is not Ana's to save
    for email in ("bo@example.com", "BO@Example.com"):
        status, body = await ana("PUT", "identity", {"name": "Ana", "email": email})
        assert (status, body["error"]) == (409, "conflict"), body
    # nor is a name other than the one the identity provider gives her
    status, body = await ana("PUT", "identity", {"name": "x", "email": "ana@elsewhere.org"})
    assert (status, body["details"]["field"]) == (400, "name"), body
    assert (await ana("GET", "identity"))[1]["email"] == "ana@example.com"

    # an email saved before it was checked opens no one else's account
    pachls_state.identities.save("ana", "Ana", "Bo@Example.com")
    status, body = await ana("GET", "labeling/login")
    assert (status, body["error"]) == (409, "conflict"), body
    assert bo_login["password"] not in json.dumps(body)

    # her own email: her own account, and it stays hers when she saves another email
    status, body = await ana("PUT", "identity", {"name": "Ana", "email": "ana@elsewhere.org"})
    assert status == 200, body
    status, ana_login = await ana("GET", "labeling/login")
    assert (status, ana_login["email"]) == (200, "ana@elsewhere.org"), ana_login
    assert (await ana("PUT", "identity", {"name": "Ana", "email": "ana.lima@elsewhere.org"}))[0] == 200
    assert (await ana("GET", "labeling/login"))[1] == ana_login
    as_ana = await asyncio.to_thread(logged_in, label_studio.url, **ana_login)
    as_bo = await asyncio.to_thread(logged_in, label_studio.url, **bo_login)
    assert as_ana.users.whoami().id != as_bo.users.whoami().id
    # and Bo cannot take the address her account has
    status, body = await bo("PUT", "identity", {"name": "Bo", "email": "Ana@elsewhere.org"})
    assert (status, body["error"]) == (409, "conflict"), body
    assert (await bo("GET", "labeling/login"))[1] == bo_login


def images(backend) -> None:
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="demo") as c:
        c.put_files(demo_files())


async def new_session(person, glob: str) -> dict:
    status, session = await person("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": glob,
        "template": "image-classification", "classes": CHOICES})
    assert status == 201, session
    return session


def old_style_label(data_commit: str, path: str, task_id: int) -> bytes:
    """A label file as an earlier version wrote it: it names its project's Label Studio task."""
    return json.dumps({
        "schema": "pachls.label/1", "task": {"id": task_id},
        "data": {"repo": "images", "commit": data_commit, "path": path},
        "annotations": [{"id": 99999, "created_by": "bo@example.com", "updated_by": "bo@example.com",
                         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                         "result": choice("cat")}]}, indent=1).encode()


async def test_label_studio_data_is_its_owners_alone(as_user, api, pachls_state):  # noqa: F811
    """Its database holds every API token in plain text: nobody else on the machine may read it,
    also when an earlier version left the data dir 0755 and the database 0644."""
    await wait_running(api)
    images(pachls_state.backend)
    await new_session(as_user("ana"), "/cats/*.png")
    assert (await as_user("bo")("GET", "labeling/login"))[0] == 200
    assert readable_by_others(pachls_state.labeling.label_studio.data_dir) == []


async def test_a_new_session_starts_from_the_committed_labels(as_user, api, pachls_state):  # noqa: F811
    ana, bo = as_user("ana"), as_user("bo")
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    backend = pachls_state.backend
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)
    images(backend)
    first = await new_session(ana, "/cats/*.png")
    as_ana = await asyncio.to_thread(logged_in, label_studio.url, **(await ana("GET", "labeling/login"))[1])
    as_bo = await asyncio.to_thread(logged_in, label_studio.url, **(await bo("GET", "labeling/login"))[1])
    tasks = {t.data["pachls_path"]: t.id for t in admin.tasks.list(project=first["project_id"])}
    for path, person, label in (("/cats/001.png", as_ana, "cat"), ("/cats/002.png", as_ana, "dog"),
                                ("/cats/003.png", as_bo, "bird")):
        person.annotations.create(id=tasks[path], result=choice(label), lead_time=1.0)
    status, round1 = await ana("POST", f"labeling/sessions/{first['id']}/commit", {"message": "round 1"})
    assert status == 201, round1

    # a second session over the same data starts with the committed labels, as their authors
    second = await new_session(bo, "/**")
    sid = second["id"]
    users = {u.id: u.email for u in admin.users.list()}
    loaded = {t.data["pachls_path"]: [(users[a["completed_by"]], a["result"][0]["value"]["choices"])
                                      for a in t.annotations]
              for t in admin.tasks.list(project=second["project_id"], fields="all") if t.annotations}
    assert loaded == {"/cats/001.png": [("ana@example.com", ["cat"])], "/cats/002.png": [("ana@example.com", ["dog"])],
                      "/cats/003.png": [("bo@example.com", ["bird"])]}
    status, pending = await bo("GET", f"labeling/sessions/{sid}/pending")
    assert pending["count"] == 0, pending
    status, body = await bo("POST", f"labeling/sessions/{sid}/commit", {"message": "nothing"})
    assert (status, body["error"]) == (400, "invalid_argument"), body

    # Bo labels a fourth cat there; the first session, which has that task unlabeled, does not undo it
    second_tasks = {t.data["pachls_path"]: t.id for t in admin.tasks.list(project=second["project_id"])}
    as_bo.annotations.create(id=second_tasks["/cats/004.png"], result=choice("dog"), lead_time=1.0)
    status, round2 = await bo("POST", f"labeling/sessions/{sid}/commit", {"message": "round 2"})
    assert status == 201 and json.loads(round2["metadata"]["pachls.labels"])["added"] == 1, round2
    status, pending = await ana("GET", f"labeling/sessions/{first['id']}/pending")
    assert pending["count"] == 0, pending

    # deleting in a project a label it held is a deletion
    [loaded_002] = admin.tasks.get(id=second_tasks["/cats/002.png"]).annotations
    admin.annotations.delete(id=loaded_002["id"])
    status, pending = await bo("GET", f"labeling/sessions/{sid}/pending")
    assert (pending["deleted"], pending["added"], pending["modified"]) == (["/cats/002.png.json"], [], []), pending

    # data new on the data branch comes with the label files the labels branch has for it
    with backend.commit("images", "master", message="more", author="demo") as c:
        c.put_file("/cats/007.png", dict(demo_files())["/cats/001.png"])
    with backend.commit("labels", "master", message="labels of new data", author="Bo <bo@example.com>") as c:
        c.put_file("/cats/007.png.json", old_style_label(first["data_commit"], "/cats/007.png", 5))
    status, body = await ana("POST", f"labeling/sessions/{first['id']}/import")
    assert status == 200, body
    annotated = {t.data["pachls_path"] for t in admin.tasks.list(project=first["project_id"], fields="all")
                 if t.annotations}
    assert annotated == {"/cats/001.png", "/cats/002.png", "/cats/003.png", "/cats/007.png"}
    status, pending = await ana("GET", f"labeling/sessions/{first['id']}/pending")
    assert pending["count"] == 0, pending


async def test_a_label_file_is_the_same_in_every_project(as_user, api, pachls_state):  # noqa: F811
    """A label file holds no Label Studio task id (it differs per project): a resync into any
    session's project leaves nothing pending, older files that name a task are not rewritten for
    it, and blame shows no change where the annotations did not change."""
    ana = as_user("ana")
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    backend = pachls_state.backend
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)
    images(backend)
    session = await new_session(ana, "/cats/*.png")
    sid = session["id"]
    tasks = {t.data["pachls_path"]: t.id for t in admin.tasks.list(project=session["project_id"])}
    admin.annotations.create(id=tasks["/cats/001.png"], result=choice("cat"))
    status, round1 = await ana("POST", f"labeling/sessions/{sid}/commit", {"message": "round 1"})
    assert status == 201, round1
    assert "task" not in json.loads(backend.get_file("labels", round1["id"], "/cats/001.png.json"))

    # label files an earlier version wrote from another project
    with backend.commit("labels", "master", message="old labels", author="Bo <bo@example.com>") as c:
        for number in ("002", "003"):
            c.put_file(f"/cats/{number}.png.json", old_style_label(session["data_commit"], f"/cats/{number}.png", 7))
    old_commit = c.finished.id
    old_bytes = backend.get_file("labels", old_commit, "/cats/002.png.json")
    status, preview = await ana("GET", f"labeling/sessions/{sid}/resync", ref="master")
    assert (preview["restore"], preview["unchanged"], preview["overwrite"], preview["remove"]) == (2, 1, [], []), preview
    status, done = await ana("POST", f"labeling/sessions/{sid}/resync", {"ref": "master", "commit": preview["commit"]})
    assert (status, done["restored"]) == (200, 2), done
    status, pending = await ana("GET", f"labeling/sessions/{sid}/pending")
    assert pending["count"] == 0, pending
    # one of them changed: only it is written, without the task id; the other keeps its bytes
    restored = admin.tasks.get(id=tasks["/cats/003.png"]).annotations[0]
    admin.annotations.update(id=restored["id"], result=choice("bird"))
    status, pending = await ana("GET", f"labeling/sessions/{sid}/pending")
    assert (pending["modified"], pending["added"], pending["deleted"]) == (["/cats/003.png.json"], [], []), pending
    status, round2 = await ana("POST", f"labeling/sessions/{sid}/commit", {"message": "round 2"})
    assert status == 201, round2
    assert backend.get_file("labels", round2["id"], "/cats/002.png.json") == old_bytes
    rewritten = json.loads(backend.get_file("labels", round2["id"], "/cats/003.png.json"))
    assert "task" not in rewritten and rewritten["annotations"][0]["created_by"] == "bo@example.com"

    # a rewrite by an earlier version naming another project's task is no label change
    with backend.commit("labels", "master", message="rewritten", author="Ana <ana@example.com>") as c:
        c.put_file("/cats/002.png.json", old_style_label(session["data_commit"], "/cats/002.png", 12345))
    status, blame = await ana("GET", "labels/blame", repo="labels", path="/cats/002.png")
    assert [(e["commit"], e["change"]) for e in blame["entries"]] == [(old_commit, "added")], blame
    status, diff = await ana("GET", "labels/diff", **{"repo": "labels", "from": round2["id"], "to": c.finished.id})
    assert diff["changes"] == [], diff


async def test_a_glob_refuses_what_a_path_refuses_and_resync_needs_the_previewed_commit(
        as_user, api, pachls_state):  # noqa: F811
    ana = as_user("ana")
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)
    images(pachls_state.backend)
    for glob in ("/cats/\u202e*.png", "/cats/\u2066*.png", "/cats/../*.png"):
        status, body = await ana("POST", "labeling/sessions", {
            "data": "images@master", "labels": "labels@master", "glob": glob,
            "template": "image-classification", "classes": CHOICES})
        assert (status, body["error"]) == (400, "invalid_path"), (glob, body)
    assert (await ana("GET", "labeling/sessions"))[1]["sessions"] == []

    session = await new_session(ana, "/cats/*.png")
    task = next(iter(admin.tasks.list(project=session["project_id"])))
    admin.annotations.create(id=task.id, result=choice("cat"))
    with pachls_state.backend.commit("labels", "master", message="other", author="demo") as c:
        c.put_file("/dogs/001.png.json", b"{}")
    status, preview = await ana("GET", f"labeling/sessions/{session['id']}/resync", ref="master")
    assert preview["remove"] == [task.data["pachls_path"]], preview
    status, body = await ana("POST", f"labeling/sessions/{session['id']}/resync", {"ref": "master", "confirm": True})
    assert (status, body["error"], body["details"]["field"]) == (400, "invalid_argument", "commit"), body
    assert len(admin.tasks.get(id=task.id).annotations) == 1  # untouched
