"""Labels tell the truth: two people label through one Jupyter server, each as themselves.

A real Jupyter server (its identity provider names the user of each request, as JupyterHub's
does) with its managed Label Studio (a copy of the session's migrated database). Each person gets
their own Label Studio account through ``GET labeling/login`` and annotates with
``label_studio_sdk`` logged in as themselves; everything else goes through the REST API.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
import pytest
from jupyter_server.auth import IdentityProvider, User
from label_studio_sdk import LabelStudio

from jupyterlab_pachls.demo import demo_files
from openapi_check import checker

from .test_proxy import ls_copy, wait_running  # noqa: F401

CHOICES = ["cat", "dog", "bird"]


class HeaderUserProvider(IdentityProvider):
    """A configured provider: Jupyter's token login, naming the user a request header gives."""

    def generate_anonymous_user(self, handler):
        name = handler.request.headers.get("X-Test-User")
        if name:
            return User(username=name, name=name.title(), display_name=name.title())
        return super().generate_anonymous_user(handler)

    def get_user_cookie(self, handler):
        return None


@pytest.fixture
def pachls_author():
    return {}  # each request's Jupyter user is its author


@pytest.fixture
def jp_server_config(jp_server_config, ls_copy):  # noqa: F811
    config = dict(jp_server_config)
    config["ServerApp"] = {**config["ServerApp"], "identity_provider_class": HeaderUserProvider}
    config["PachlsConfig"] = {"label_studio_dir": str(ls_copy), "user_email_domain": "example.com"}
    return config


@pytest.fixture
def as_user(jp_fetch):
    """``await as_user("ana")("GET", "identity")`` -> (status, JSON): a request made by that Jupyter user."""

    def person(user: str | None):
        async def call(method: str, route: str, body: object = None, **params):
            response = await jp_fetch(
                "pachls", "api", *route.split("/"), method=method, raise_error=False, params=params or None,
                request_timeout=300,
                headers={"X-Test-User": user} if user else {},
                body=json.dumps(body) if body is not None else (b"" if method in ("POST", "PUT") else None))
            # every answer as openapi.yaml documents it
            decoded = checker().check(method, "/" + route, response.code, response.headers.get("Content-Type", ""),
                                      response.body)
            return response.code, decoded
        return call
    return person


def logged_in(url: str, email: str, password: str) -> LabelStudio:
    """label_studio_sdk as the Label Studio user ``email``: logs in with the password, uses its own token."""
    with httpx.Client(base_url=url, timeout=60) as browser:
        browser.get("/user/login/")
        csrf = browser.cookies["csrftoken"]
        done = browser.post("/user/login/", data={"csrfmiddlewaretoken": csrf, "email": email, "password": password})
        assert done.status_code == 302, f"{email} could not log in ({done.status_code})"
        token = browser.get("/api/current-user/token").json()["token"]
    return LabelStudio(base_url=url, api_key=token)


def choice(label: str) -> list[dict]:
    return [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


def annotations_of(client: LabelStudio, project: int) -> dict[str, list]:
    """data path -> [(annotation id, choices)] of every task, read by the admin."""
    found = {}
    for task in client.tasks.list(project=project, fields="all"):
        found[task.data["pachls_path"]] = sorted(
            (a["id"], tuple(a["result"][0]["value"]["choices"])) for a in (task.annotations or []))
    return found


async def test_two_people_label_commit_blame_rollback_and_resync(as_user, api, pachls_state):
    ana, bo = as_user("ana"), as_user("bo")
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="demo") as c:
        c.put_files(demo_files())
    status, session = await ana("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/cats/*.png",
        "template": "image-classification", "classes": CHOICES})
    assert status == 201, session
    assert session["created_by"] == "Ana <ana@example.com>"
    sid, project = session["id"], session["project_id"]

    # each person logs in to Label Studio as themselves, never as the admin
    _, ana_login = await ana("GET", "labeling/login")
    _, bo_login = await bo("GET", "labeling/login")
    assert (ana_login["email"], bo_login["email"]) == ("ana@example.com", "bo@example.com")
    assert label_studio.credentials.password not in (ana_login["password"], bo_login["password"])
    assert ana_login["password"] != bo_login["password"]
    assert (await ana("GET", "labeling/login"))[1] == ana_login  # the same account the next time
    as_ana = await asyncio.to_thread(logged_in, label_studio.url, **ana_login)
    as_bo = await asyncio.to_thread(logged_in, label_studio.url, **bo_login)
    assert as_ana.users.whoami().email == "ana@example.com"
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)
    tasks = {t.data["pachls_path"]: t.id for t in admin.tasks.list(project=project)}

    # round 1: Ana labels two cats
    first = as_ana.annotations.create(id=tasks["/cats/001.png"], result=choice("cat"), lead_time=2.0)
    as_ana.annotations.create(id=tasks["/cats/002.png"], result=choice("dog"), lead_time=2.0)
    status, round1 = await ana("POST", f"labeling/sessions/{sid}/commit", {"message": "round 1"})
    assert status == 201, round1
    assert round1["author"] == "Ana <ana@example.com>"
    assert round1["metadata"]["pachls.annotators"] == "ana@example.com"
    assert round1["metadata"]["pachls.changed_by"] == "ana@example.com"

    # round 2: Bo changes Ana's label and labels a third cat
    as_bo.annotations.update(id=first.id, result=choice("bird"))
    as_bo.annotations.create(id=tasks["/cats/003.png"], result=choice("cat"), lead_time=1.0)
    status, pending = await bo("GET", f"labeling/sessions/{sid}/pending")
    assert (pending["added"], pending["modified"]) == (["/cats/003.png.json"], ["/cats/001.png.json"])
    assert (pending["annotators"], pending["changed_by"]) == (["ana@example.com", "bo@example.com"],
                                                              ["bo@example.com"])
    status, round2 = await bo("POST", f"labeling/sessions/{sid}/commit", {"message": "round 2"})
    assert status == 201, round2
    assert round2["author"] == "Bo <bo@example.com>" and round2["metadata"]["pachls.changed_by"] == "bo@example.com"
    [annotation] = json.loads(backend.get_file("labels", round2["id"], "/cats/001.png.json"))["annotations"]
    assert (annotation["created_by"], annotation["updated_by"]) == ("ana@example.com", "bo@example.com")
    assert annotation["created_at"] and annotation["updated_at"] >= annotation["created_at"]

    # blame, the label diff and rows name both the one who labeled and the one who changed it
    status, blame = await ana("GET", "labels/blame", repo="labels", path="/cats/001.png")
    assert [(e["author"], e["labels"], e["annotators"], e["changed_by"]) for e in blame["entries"]] == [
        ("Bo <bo@example.com>", ["bird"], ["ana@example.com"], ["bo@example.com"]),
        ("Ana <ana@example.com>", ["cat"], ["ana@example.com"], ["ana@example.com"])]
    # the same from any mount of the data (here images@master under the name "images", not the session's
    # own data mount), the path inside the mount; a mount of data no session labels is a 404
    status, mounted = await ana("POST", "mounts", {"repo": "images", "branch": "master", "name": "images"})
    assert status == 201 and mounted["name"] != session["data_mount"], mounted
    status, seen = await ana("GET", "labels/blame", mount="images", path="/cats/001.png")
    assert status == 200, seen
    assert (seen["repo"], seen["ref"], seen["session"], seen["entries"]) == ("labels", "master", sid, blame["entries"])
    status, mounted = await ana("POST", "mounts", {"repo": "labels", "branch": "master", "name": "labels_ro"})
    assert status == 201, mounted
    status, body = await ana("GET", "labels/blame", mount="labels_ro", path="/cats/001.png.json")
    assert (status, body["error"]) == (404, "not_found"), body
    status, diff = await ana("GET", "labels/diff", **{"repo": "labels", "from": round1["id"], "to": round2["id"]})
    assert [(c["path"], c["change"], c["annotator"], c["changed_by"], c["before"], c["after"])
            for c in diff["changes"]] == [
        ("/cats/001.png", "modified", "ana@example.com", ["bo@example.com"], ["cat"], ["bird"]),
        ("/cats/003.png", "added", "bo@example.com", ["bo@example.com"], [], ["cat"])]
    status, rows = await ana("GET", "labels/rows", repo="labels")
    assert [(r["data_path"], r["created_by"], r["updated_by"]) for r in rows["rows"]] == [
        ("/cats/001.png", "ana@example.com", "bo@example.com"), ("/cats/002.png", "ana@example.com", "ana@example.com"),
        ("/cats/003.png", "bo@example.com", "bo@example.com")]

    # a mistyped ref touches nothing
    before = annotations_of(admin, project)
    status, body = await ana("GET", f"labeling/sessions/{sid}/resync", ref="no-such-branch")
    assert (status, body["error"]) == (404, "not_found"), body
    status, body = await ana("POST", f"labeling/sessions/{sid}/resync", {"ref": "no-such-branch", "confirm": True})
    assert (status, body["error"]) == (404, "not_found"), body
    assert annotations_of(admin, project) == before

    # roll the labels back to round 1; Bo labels one more cat, never committed
    status, moved = await ana("PUT", "repos/labels/branches/master/head", {"commit": round1["id"]})
    assert status == 200, moved
    as_bo.annotations.create(id=tasks["/cats/004.png"], result=choice("dog"), lead_time=1.0)
    status, preview = await ana("GET", f"labeling/sessions/{sid}/resync", ref="master")
    assert status == 200, preview
    assert preview == {"ref": "master", "commit": round1["id"], "restore": 1, "unchanged": 1,
                       "overwrite": ["/cats/001.png"], "remove": ["/cats/003.png", "/cats/004.png"],
                       "uncommitted": ["/cats/004.png"]}
    # the preview changed nothing
    assert {**annotations_of(admin, project), "/cats/004.png": []} == before

    # without confirm: refused with the preview; with a stale commit id: refused
    status, body = await ana("POST", f"labeling/sessions/{sid}/resync", {"ref": "master", "commit": preview["commit"]})
    assert (status, body["error"]) == (409, "confirmation_required"), body
    assert body["details"]["uncommitted"] == ["/cats/004.png"]
    status, body = await ana("POST", f"labeling/sessions/{sid}/resync",
                             {"ref": "master", "commit": round2["id"], "confirm": True})
    assert (status, body["error"]) == (409, "conflict"), body
    assert len(annotations_of(admin, project)["/cats/004.png"]) == 1  # still there

    status, done = await ana("POST", f"labeling/sessions/{sid}/resync",
                             {"ref": "master", "commit": preview["commit"], "confirm": True})
    assert status == 200, done
    assert done == {"restored": 1, "removed": 3, "commit": round1["id"]}
    now = annotations_of(admin, project)
    assert [c for _, c in now["/cats/001.png"]] == [("cat",)] and now["/cats/003.png"] == [] \
        and now["/cats/004.png"] == [] and now["/cats/002.png"] == before["/cats/002.png"]
    recreated = admin.annotations.get(id=now["/cats/001.png"][0][0])
    users = {u.id: u.email for u in admin.users.list()}
    assert users[recreated.completed_by] == "ana@example.com"  # recreated as its original author

    # a resync of what is committed leaves nothing pending, and the authors as they were
    status, pending = await ana("GET", f"labeling/sessions/{sid}/pending")
    assert pending["count"] == 0, pending
    # Bo changes the restored annotation: it keeps its id and creator, and names Bo as the changer
    as_bo.annotations.update(id=recreated.id, result=choice("dog"))
    status, pending = await bo("GET", f"labeling/sessions/{sid}/pending")
    assert (pending["modified"], pending["changed_by"]) == (["/cats/001.png.json"], ["bo@example.com"])
    status, round3 = await bo("POST", f"labeling/sessions/{sid}/commit", {"message": "round 3"})
    assert status == 201, round3
    [annotation] = json.loads(backend.get_file("labels", round3["id"], "/cats/001.png.json"))["annotations"]
    assert (annotation["id"], annotation["created_by"], annotation["updated_by"]) == (
        first.id, "ana@example.com", "bo@example.com")
    status, diff = await ana("GET", "labels/diff", **{"repo": "labels", "from": round1["id"], "to": round3["id"]})
    assert [(c["annotation"], c["change"]) for c in diff["changes"]] == [(first.id, "modified")]


async def test_no_identity_no_login_no_label_commit(as_user, api, pachls_state, tmp_path, monkeypatch):
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    nobody = as_user(None)  # plain token login: Jupyter's made-up anonymous user
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="demo") as c:
        c.put_files(demo_files()[:2])
    status, session = await nobody("POST", "labeling/sessions", {  # writes no history: allowed
        "data": "images@master", "labels": "labels@master", "template": "image-classification",
        "classes": CHOICES})
    assert status == 201 and session["created_by"] == "", session
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)
    task = next(iter(admin.tasks.list(project=session["project_id"])))
    admin.annotations.create(id=task.id, result=choice("cat"))

    status, body = await nobody("GET", "labeling/login")
    assert (status, body["error"]) == (409, "identity_required"), body
    status, body = await nobody("POST", f"labeling/sessions/{session['id']}/commit", {"message": "m"})
    assert (status, body["error"]) == (409, "identity_required"), body
    status, body = await nobody("POST", f"labeling/sessions/{session['id']}/resync",
                                {"ref": "master", "confirm": True})
    assert (status, body["error"]) == (409, "identity_required"), body
    assert backend.list_commits("labels", "master") == []  # nothing committed
    assert len(admin.annotations.list(id=task.id)) == 1  # nothing resynced away
    status, pending = await nobody("GET", f"labeling/sessions/{session['id']}/pending")
    assert pending["count"] == 1
    status, body = await nobody("PUT", "identity", {"name": "Noa Name", "email": "noa@example.com"})
    status, landed = await nobody("POST", f"labeling/sessions/{session['id']}/commit", {"message": "m"})
    assert status == 201 and landed["author"] == "Noa Name <noa@example.com>", landed


async def test_deleting_a_session_keeps_or_deletes_its_project_and_never_loses_labels(as_user, api, pachls_state):
    ana = as_user("ana")
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="demo") as c:
        c.put_files(demo_files()[:4])
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)

    status, body = await ana("POST", "labeling/sessions", {"data": "images@master", "labels": "labels@master",
                                                           "glob": "h2evil\u0000x", "template": "image-classification"})
    assert (status, body["error"]) == (400, "invalid_path"), body
    status, body = await ana("POST", "labeling/sessions", {"data": "images@master", "labels": "labels@master",
                                                           "glob": "..\\..\\x", "template": "image-classification"})
    assert (status, body["error"]) == (400, "invalid_path"), body
    status, body = await ana("GET", "labels/blame", repo="labels", path="..\\..\\x")
    assert (status, body["error"]) == (400, "invalid_path"), body
    status, body = await ana("GET", "labels/rows", repo="labels", path="cats")
    assert (status, body["error"]) == (400, "invalid_path"), body
    assert (await ana("GET", "labeling/sessions"))[1]["sessions"] == []

    status, session = await ana("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "template": "image-classification",
        "classes": CHOICES})
    assert status == 201, session
    sid, project = session["id"], session["project_id"]
    task = next(iter(admin.tasks.list(project=project)))
    admin.annotations.create(id=task.id, result=choice("cat"))
    status, body = await ana("DELETE", f"labeling/sessions/{sid}")
    assert (status, body["error"], body["details"]) == (409, "pending_labels", {"pending": 1}), body
    status, body = await ana("DELETE", f"labeling/sessions/{sid}", project="maybe")
    assert (status, body["error"]) == (400, "invalid_argument"), body
    status, landed = await ana("POST", f"labeling/sessions/{sid}/commit", {"message": "labels"})
    assert status == 201, landed
    status, body = await ana("DELETE", f"labeling/sessions/{sid}")
    assert (status, body) == (200, {"deleted": sid, "project": "kept", "project_id": project})
    assert admin.projects.get(id=project).id == project  # kept
    assert (await ana("GET", f"labeling/sessions/{sid}"))[0] == 404
    assert backend.inspect_branch("labels", "master").head.id == landed["id"]  # labels untouched

    # a new session on the same data; deleted with its project and its uncommitted annotation (forced)
    status, again = await ana("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "glob": "/cats/*.png",
        "template": "image-classification", "classes": CHOICES})
    task = next(iter(admin.tasks.list(project=again["project_id"])))
    admin.annotations.create(id=task.id, result=choice("dog"))
    status, body = await ana("DELETE", f"labeling/sessions/{again['id']}", project="delete", force="true")
    assert (status, body) == (200, {"deleted": again["id"], "project": "deleted", "project_id": again["project_id"]})
    assert again["project_id"] not in {p.id for p in admin.projects.list()}
    assert backend.inspect_branch("labels", "master").head.id == landed["id"]


async def test_label_studio_has_no_door_without_the_jupyter_token(api, pachls_state):
    """A local process talking to the managed Label Studio's port directly, without Jupyter's token:
    no sign-up, no login as the admin, no task."""
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="demo") as c:
        c.put_files(demo_files()[:2])
    status, session = await api("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "template": "image-classification",
        "classes": CHOICES})
    assert status == 201, session

    def try_the_doors() -> None:
        with httpx.Client(base_url=label_studio.url, timeout=60) as stranger:
            assert stranger.get("/api/tasks/", params={"project": session["project_id"]}).status_code == 401
            assert stranger.get(f"/api/projects/{session['project_id']}/").status_code == 401
            assert stranger.get("/api/users/").status_code == 401
            for token in (None, "guessed"):
                stranger.get("/user/signup/", params={"token": token} if token else None)
                csrf = stranger.cookies.get("csrftoken")
                answer = stranger.post("/user/signup/", params={"token": token} if token else None, data={
                    "csrfmiddlewaretoken": csrf or "", "email": "mallory@example.com", "password": "Mallory-12345!"})
                assert answer.status_code == 403, answer.status_code
            stranger.get("/user/login/")
            answer = stranger.post("/user/login/", data={"csrfmiddlewaretoken": stranger.cookies.get("csrftoken"),
                                                         "email": label_studio.credentials.email,
                                                         "password": "password"})
            assert answer.status_code != 302
            assert stranger.get("/api/tasks/", params={"project": session["project_id"]}).status_code == 401

    await asyncio.to_thread(try_the_doors)
    database = sqlite3.connect(label_studio.data_dir / "label_studio.sqlite3")
    try:
        emails = {row[0] for row in database.execute("select email from htx_user")}
    finally:
        database.close()
    assert "mallory@example.com" not in emails


async def test_a_jupyter_user_whose_label_studio_account_exists_logs_in_to_it(as_user, api, pachls_state):
    """An account made before (by resync, or by someone with the admin token) gets a password only the
    server knows, set through Label Studio's own command; the tab logs in to that same account."""
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    admin = LabelStudio(base_url=label_studio.url, api_key=label_studio.credentials.token)
    made = await asyncio.to_thread(admin.users.create, email="cy@example.com", username="cy-before",
                                   first_name="Cy")
    status, login = await as_user("cy")("GET", "labeling/login")
    assert status == 200, login
    assert login["email"] == "cy@example.com"
    as_cy = await asyncio.to_thread(logged_in, label_studio.url, **login)
    assert as_cy.users.whoami().id == made.id
    assert json.loads((label_studio.data_dir / "accounts.json").read_text())["cy@example.com"] == login["password"]
    assert oct((label_studio.data_dir / "accounts.json").stat().st_mode & 0o777) == "0o600"
