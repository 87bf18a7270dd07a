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

    # Label Studio's data (its database holds every API token) is its owner's alone
    assert readable_by_others(label_studio.data_dir) == []


async def test_a_new_session_starts_from_the_committed_labels(as_user, api, pachls_state):  # noqa: F811
    ana, bo = as_user("ana"), as_user("bo")
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    backend = pachls_state.backend
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="demo") as c:
        c.put_files(demo_files())

    status, body = await ana("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/cats/\u202e*.png",
        "template": "image-classification", "classes": CHOICES})
    assert (status, body["error"]) == (400, "invalid_path"), body

    status, first = await ana("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/cats/*.png",
        "template": "image-classification", "classes": CHOICES})
    assert status == 201, first
    as_ana = await asyncio.to_thread(logged_in, label_studio.url, **(await ana("GET", "labeling/login"))[1])
    as_bo = await asyncio.to_thread(logged_in, label_studio.url, **(await bo("GET", "labeling/login"))[1])
    tasks = {t.data["pachls_path"]: t.id for t in admin.tasks.list(project=first["project_id"])}
    for path, person, label in (("/cats/001.png", as_ana, "cat"), ("/cats/002.png", as_ana, "dog"),
                                ("/cats/003.png", as_bo, "bird")):
        person.annotations.create(id=tasks[path], result=choice(label), lead_time=1.0)
    status, round1 = await ana("POST", f"labeling/sessions/{first['id']}/commit", {"message": "round 1"})
    assert status == 201, round1
    assert '"task"' not in backend.get_file("labels", round1["id"], "/cats/001.png.json").decode()
    # a label file an earlier version wrote: it names its project's task
    old_style = {"schema": "pachls.label/1", "task": {"id": 99999},
                 "data": {"repo": "images", "commit": first["data_commit"], "path": "/cats/004.png"},
                 "annotations": [{"id": 99999, "created_by": "bo@example.com", "updated_by": "bo@example.com",
                                  "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                                  "result": choice("cat")}]}
    with backend.commit("labels", "master", message="old labels", author="Bo <bo@example.com>") as c:
        c.put_file("/cats/004.png.json", json.dumps(old_style, indent=1).encode())
    old_commit = c.finished.id
    # the first session never held /cats/004.png's label: it does not delete it
    status, pending = await ana("GET", f"labeling/sessions/{first['id']}/pending")
    assert pending["count"] == 0, pending

    # a second session over the same data starts with the committed labels, as their authors
    status, second = await bo("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/**",
        "template": "image-classification", "classes": CHOICES})
    assert status == 201, second
    sid = second["id"]
    users = {u.id: u.email for u in admin.users.list()}
    loaded = {t.data["pachls_path"]: [(users[a["completed_by"]], a["result"][0]["value"]["choices"])
                                      for a in t.annotations]
              for t in admin.tasks.list(project=second["project_id"], fields="all") if t.annotations}
    assert loaded == {"/cats/001.png": [("ana@example.com", ["cat"])], "/cats/002.png": [("ana@example.com", ["dog"])],
                      "/cats/003.png": [("bo@example.com", ["bird"])], "/cats/004.png": [("bo@example.com", ["cat"])]}
    status, pending = await bo("GET", f"labeling/sessions/{sid}/pending")
    assert pending["count"] == 0, pending
    status, body = await bo("POST", f"labeling/sessions/{sid}/commit", {"message": "nothing"})
    assert (status, body["error"]) == (400, "invalid_argument"), body

    # Bo labels a fifth cat there; the first session, which has that task unlabeled, does not undo it
    second_tasks = {t.data["pachls_path"]: t.id for t in admin.tasks.list(project=second["project_id"])}
    as_bo.annotations.create(id=second_tasks["/cats/005.png"], result=choice("dog"), lead_time=1.0)
    status, round2 = await bo("POST", f"labeling/sessions/{sid}/commit", {"message": "round 2"})
    assert status == 201 and round2["metadata"]["pachls.labels"].count('"added": 1'), round2
    status, pending = await ana("GET", f"labeling/sessions/{first['id']}/pending")
    assert pending["count"] == 0, pending

    # resync of what is committed into the first session's project: nothing pending, nothing rewritten
    status, preview = await ana("GET", f"labeling/sessions/{first['id']}/resync", ref="master")
    assert (preview["restore"], preview["unchanged"], preview["overwrite"], preview["remove"]) == (2, 3, [], []), preview
    status, done = await ana("POST", f"labeling/sessions/{first['id']}/resync",
                             {"ref": "master", "commit": preview["commit"]})
    assert (status, done["restored"]) == (200, 2), done
    status, pending = await ana("GET", f"labeling/sessions/{first['id']}/pending")
    assert pending["count"] == 0, pending

    # a rewrite by an earlier version with another project's task id is no label change in blame
    rewritten = {**old_style, "task": {"id": 12345}}
    before_rewrite = backend.inspect_branch("labels", "master").head.id
    with backend.commit("labels", "master", message="rewritten", author="Ana <ana@example.com>") as c:
        c.put_file("/cats/004.png.json", json.dumps(rewritten, indent=1).encode())
    status, blame = await ana("GET", "labels/blame", repo="labels", path="/cats/004.png")
    assert [(e["commit"], e["change"]) for e in blame["entries"]] == [(old_commit, "added")], blame
    status, diff = await ana("GET", "labels/diff", **{"repo": "labels", "from": before_rewrite, "to": c.finished.id})
    assert diff["changes"] == [], diff

    # deleting in a project a label it held is a deletion
    [loaded_002] = admin.tasks.get(id=second_tasks["/cats/002.png"]).annotations
    admin.annotations.delete(id=loaded_002["id"])
    status, pending = await bo("GET", f"labeling/sessions/{sid}/pending")
    assert (pending["deleted"], pending["added"], pending["modified"]) == (["/cats/002.png.json"], [], []), pending

    # a resync that replaces annotations needs the previewed commit as well as confirm
    as_bo.annotations.update(id=admin.tasks.get(id=second_tasks["/cats/001.png"]).annotations[0]["id"],
                             result=choice("bird"))
    status, body = await bo("POST", f"labeling/sessions/{sid}/resync", {"ref": "master", "confirm": True})
    assert (status, body["error"], body["details"]["field"]) == (400, "invalid_argument", "commit"), body

    # data new on the data branch comes with the label files the labels branch has for it
    with backend.commit("images", "master", message="more", author="demo") as c:
        c.put_file("/cats/007.png", dict(demo_files())["/cats/001.png"])
    label = {**old_style, "data": {**old_style["data"], "path": "/cats/007.png"}}
    del label["task"]
    with backend.commit("labels", "master", message="labels of new data", author="Bo <bo@example.com>") as c:
        c.put_file("/cats/007.png.json", json.dumps(label, indent=1).encode())
    status, body = await ana("POST", f"labeling/sessions/{first['id']}/import")
    assert status == 200, body
    annotated = {t.data["pachls_path"] for t in admin.tasks.list(project=first["project_id"], fields="all")
                 if t.annotations}
    assert "/cats/007.png" in annotated
    status, pending = await ana("GET", f"labeling/sessions/{first['id']}/pending")
    assert pending["count"] == 0, pending
