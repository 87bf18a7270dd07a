"""Label Studio's credentials stay server-side, Label Studio listens on loopback only, and a hostile
task cannot make a label commit write outside the labels repo.

A full labeling round runs through a real Jupyter server with its managed Label Studio (a copy of
the session's migrated database, so it starts in seconds). Every API response of the round, the
server's log and the built frontend bundle are scanned for the admin password and API token.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import uuid
from pathlib import Path

import httpx
import pytest
from jupyter_server.utils import url_path_join

import jupyterlab_pachls
from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.labeling.labelfile import label_path
from jupyterlab_pachls.labeling.session import LabelingService
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import InvalidPath, LocalBackend

from .test_proxy import ls_copy, wait_running  # noqa: F401

STATIC = Path(jupyterlab_pachls.__file__).parent / "labextension" / "static"


@pytest.fixture
def pachls_config(ls_copy):  # noqa: F811
    return {"PachlsConfig": {"label_studio_dir": str(ls_copy)}}


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # TCP_LISTEN
                found.append(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


async def test_a_labeling_round_never_shows_label_studio_credentials(
    api, jp_fetch, pachls_state, jp_serverapp, caplog, http_server_client, jp_base_url
):
    caplog.set_level(logging.DEBUG)
    await wait_running(api)
    label_studio = pachls_state.labeling.label_studio
    creds = label_studio.credentials
    secrets = {"password": creds.password.encode(), "token": creds.token.encode()}

    # Loopback only, IPv4 and IPv6.
    addresses = listening_addresses(label_studio.port)
    assert addresses, f"nothing listens on Label Studio's port {label_studio.port}"
    assert set(addresses) <= LOOPBACK, addresses

    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master") as c:
        c.put_files(demo_files()[:3])
    bodies: dict[str, bytes] = {}

    async def call(method, path, body=None):
        kwargs = {"method": method, "raise_error": False}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        response = await jp_fetch("pachls", "api", *path.split("/"), **kwargs)
        bodies[f"{method} {path}"] = response.body or b""
        return response.code, json.loads(response.body) if response.body else None

    status, session = await call("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "template": "image-classification",
        "classes": ["cat", "dog"]})
    assert status == 201, session
    # One annotation, as the labeler's browser would make it (Label Studio's API, server-side token here).
    headers = {"Authorization": f"Token {creds.token}"}
    tasks = (await asyncio.to_thread(httpx.get, f"{label_studio.url}/api/tasks/",
                                     params={"project": session["project_id"]}, headers=headers)).json()
    task = (tasks["tasks"] if isinstance(tasks, dict) else tasks)[0]
    created = await asyncio.to_thread(httpx.post, f"{label_studio.url}/api/tasks/{task['id']}/annotations/",
                                      headers=headers, json={"result": [{
                                          "from_name": "choice", "to_name": "image", "type": "choices",
                                          "value": {"choices": ["cat"]}}]})
    assert created.status_code == 201, created.text
    sid = session["id"]
    for method, path, body in (("GET", "labeling", None), ("GET", "labeling/sessions", None),
                               ("GET", f"labeling/sessions/{sid}", None),
                               ("GET", f"labeling/sessions/{sid}/pending", None),
                               ("POST", f"labeling/sessions/{sid}/commit", {"message": "round one"}),
                               ("GET", "labeling/log", None), ("GET", "health", None), ("GET", "backend", None),
                               ("GET", "mounts", None), ("GET", "repos", None)):
        status, _ = await call(method, path, body)
        assert status in (200, 201), (method, path, status)
    login = await jp_fetch("pachls", "api", "labeling", "login")
    assert login.headers["Cache-Control"] == "no-store"  # the password is handed to the tab, never cached
    assert secrets["token"] not in login.body  # the API token never reaches a browser
    assert secrets["password"] not in login.body  # the tab gets the user's own account, not the admin's
    # the user's own password: handed to the tab only, in no log
    secrets["user password"] = json.loads(login.body)["password"].encode()

    # Through the proxy, with Jupyter's token in the query: Label Studio never sees it.
    jupyter_token = jp_serverapp.identity_provider.token
    page = await jp_fetch("pachls", "labelstudio", "user", "login/", params={"token": jupyter_token},
                          headers={"Authorization": ""}, raise_error=False, follow_redirects=False)
    assert page.code in (200, 302)
    bodies["proxy login page"] = page.body or b""
    # ... nor with its key percent-encoded (tornado and Jupyter's check decode it: so must the filter)
    encoded = await http_server_client.fetch(
        url_path_join(jp_base_url, "pachls", "labelstudio", "user", "login/") + f"?%74oken={jupyter_token}",
        raise_error=False, follow_redirects=False)
    assert encoded.code in (200, 302)
    ls_log = (Path(label_studio.log_path).read_bytes())

    for where, body in bodies.items():
        for name, secret in secrets.items():
            assert secret not in body, f"the Label Studio {name} is in the response to {where}"
    server_log = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert b"labeling/sessions" in server_log  # the log was captured
    for name, secret in secrets.items():
        assert secret not in server_log, f"the Label Studio {name} is in the Jupyter server's log"
    for path in glob.glob(str(STATIC / "*")):
        raw = Path(path).read_bytes()
        for name, secret in secrets.items():
            assert secret not in raw, f"the Label Studio {name} is in the frontend bundle {path}"
    assert jupyter_token and jupyter_token.encode() not in ls_log, "Jupyter's token reached Label Studio's log"
    assert secrets["user password"] not in ls_log, "a user's Label Studio password is in its log"


# -- a hostile task: its pachls_path points outside the labels repo --------------------------------
@pytest.fixture
def no_fuse_world(tmp_path, label_studio, ls_document_root, monkeypatch):
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("images")
    with backend.commit("images", "master") as c:
        c.put_files(demo_files()[:2])
    mounts = MountManager(backend, ls_document_root / uuid.uuid4().hex[:8], tmp_path / "mount-state")
    service = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_bytes(b"canary")
    yield backend, mounts, service, canary
    mounts.close()
    backend.close()


def annotate(label_studio, task_id: int) -> None:
    response = httpx.post(f"{label_studio.url}/api/tasks/{task_id}/annotations/",
                          headers={"Authorization": f"Token {label_studio.credentials.token}"},
                          json={"result": [{"from_name": "choice", "to_name": "image", "type": "choices",
                                            "value": {"choices": ["cat"]}}]})
    assert response.status_code == 201, response.text


def import_task(label_studio, project: int, data: dict) -> int:
    headers = {"Authorization": f"Token {label_studio.credentials.token}"}
    response = httpx.post(f"{label_studio.url}/api/projects/{project}/import", headers=headers, json=[data],
                          params={"commit_to_project": "true", "return_task_ids": "true"})
    assert response.status_code == 201, response.text
    return response.json()["task_ids"][0]


def tree(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_a_task_with_a_hostile_path_commits_nothing(no_fuse_world, label_studio):
    backend, mounts, service, canary = no_fuse_world
    session = service.create_session(data="images@master", labels="labels@master",
                                     template="image-classification", classes=["cat", "dog"])
    before = tree(canary)
    relative = os.path.relpath(canary / "evil.png", mounts.mount_dir / session.labels_mount)
    for hostile in (relative, "/../../../canary/evil.png", "/cats/\x00.png"):
        task = import_task(label_studio, session.project_id,
                           {"image": "x", "pachls_path": hostile, "pachls_commit": session.data_commit})
        annotate(label_studio, task)
        with pytest.raises(InvalidPath):
            service.commit_labels(session.id, message="hostile", author="mallory")
        httpx.delete(f"{label_studio.url}/api/tasks/{task}/",
                     headers={"Authorization": f"Token {label_studio.credentials.token}"})
    assert tree(canary) == before
    assert backend.inspect_branch("labels", "master").head is None  # nothing committed, not half


def test_a_symlinked_label_directory_is_never_written_through(no_fuse_world, label_studio):
    backend, mounts, service, canary = no_fuse_world
    session = service.create_session(data="images@master", labels="labels@master",
                                     template="image-classification", classes=["cat", "dog"])
    task = httpx.get(f"{label_studio.url}/api/tasks/", params={"project": session.project_id},
                     headers={"Authorization": f"Token {label_studio.credentials.token}"}).json()
    task = (task["tasks"] if isinstance(task, dict) else task)[0]
    annotate(label_studio, task["id"])
    directory = task["data"]["pachls_path"].rsplit("/", 1)[0]
    root = Path(mounts.status(session.labels_mount).mountpoint)
    os.symlink(canary, root / directory.lstrip("/"))
    before = tree(canary)
    with pytest.raises(InvalidPath, match="symlink"):
        service.commit_labels(session.id, message="through a symlink", author="mallory")
    assert tree(canary) == before
    assert backend.inspect_branch("labels", "master").head is None

    # the label file itself planted as a symlink to a file outside
    os.unlink(root / directory.lstrip("/"))
    label = root / label_path(task["data"]["pachls_path"]).lstrip("/")
    label.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(canary / "keep.txt", label)
    with pytest.raises(InvalidPath, match="symlink"):
        service.commit_labels(session.id, message="through a symlink", author="mallory")
    assert tree(canary) == before
