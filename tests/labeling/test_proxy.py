"""Label Studio through the Jupyter server: same origin, behind Jupyter's login, logged in automatically."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest


@pytest.fixture
def ls_copy(label_studio, tmp_path):
    """A copy of the session's migrated Label Studio data, so this server's own process starts in seconds."""
    target = tmp_path / "labelstudio"
    target.mkdir()
    shutil.copy(label_studio.data_dir / "credentials.json", target)
    source = sqlite3.connect(label_studio.data_dir / "label_studio.sqlite3")
    copy = sqlite3.connect(target / "label_studio.sqlite3")
    source.backup(copy)
    source.close()
    copy.close()
    return target


@pytest.fixture
def pachls_config(ls_copy):
    return {"PachlsConfig": {"label_studio_dir": str(ls_copy)}}


async def wait_running(api):
    status, body = await api("POST", "labeling")
    assert status == 202, body
    for _ in range(600):
        status, body = await api("GET", "labeling")
        if body["label_studio"]["state"] == "running":
            return body
        assert body["label_studio"]["state"] == "starting", body
        await asyncio.sleep(0.5)
    raise AssertionError("Label Studio did not start")


async def test_proxy_refuses_requests_without_jupyter_login(jp_fetch):
    response = await jp_fetch("pachls", "labelstudio", "user", "login/", headers={"Authorization": "token wrong"},
                              follow_redirects=False, raise_error=False)
    assert response.code in (302, 401, 403)
    if response.code == 302:
        assert "/login" in response.headers["Location"]


async def test_label_studio_is_served_and_logs_in_same_origin(jp_fetch, api, pachls_state):
    await wait_running(api)
    port = pachls_state.labeling.label_studio.port
    page = await jp_fetch("pachls", "labelstudio", "user", "login/", headers={"Host": "localhost:8123"})
    html = page.body.decode()
    assert page.code == 200 and "csrfmiddlewaretoken" in html
    assert f"127.0.0.1:{port}" not in html  # the internal address never reaches the browser
    baked = pachls_state.labeling.baked_origin
    assert baked not in html and "http://localhost:8123" in html  # origin rewritten to the request's own

    status, creds = await api("GET", "labeling/login")
    assert status == 200 and set(creds) == {"email", "password"}
    cookies = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        cookies.load(header)
    csrf = cookies["csrftoken"].value
    form = urlencode({"csrfmiddlewaretoken": csrf, "email": creds["email"], "password": creds["password"],
                      "persist_session": "on"})
    login = await jp_fetch(
        "pachls", "labelstudio", "user", "login/", method="POST", body=form, follow_redirects=False,
        raise_error=False,
        headers={"Cookie": f"csrftoken={csrf}", "Content-Type": "application/x-www-form-urlencoded",
                 "Referer": page.effective_url, "Origin": re.match(r"https?://[^/]+", page.effective_url)[0]},
    )
    assert login.code == 302, login.body[:500]
    location = login.headers["Location"]
    assert location.count("pachls/labelstudio") <= 1  # the prefix is not doubled
    session_cookie = [h for h in login.headers.get_list("Set-Cookie") if h.startswith("sessionid=")]
    assert session_cookie, "no Label Studio session after the automatic login"
    sessionid = session_cookie[0].split(";")[0]
    me = await jp_fetch("pachls", "labelstudio", "api", "current-user", "whoami",
                        headers={"Cookie": f"{sessionid}; csrftoken={csrf}"})
    assert json.loads(me.body)["email"] == creds["email"]


async def test_task_images_load_through_the_proxy(jp_fetch, api, pachls_state, jp_base_url):
    from jupyterlab_pachls.demo import demo_files

    await wait_running(api)
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master") as c:
        c.put_files(demo_files()[:2])
    status, session = await api("POST", "labeling/sessions", {
        "data": "images@master", "labels": "labels@master", "template": "image-classification",
        "classes": ["cat", "dog"]})
    assert status == 201, session
    labeling = pachls_state.labeling
    tasks = await asyncio.to_thread(labeling._export, labeling.get(session["id"]), all_tasks=True)
    url = tasks[0]["data"]["image"]
    # the frontend loads the URL as it is: it must be under the proxy's path, not the server root
    assert url.startswith(f"{jp_base_url}pachls/labelstudio/data/local-files/?d="), url
    login_page = await jp_fetch("pachls", "labelstudio", "user", "login/")
    cookies = SimpleCookie()
    for header in login_page.headers.get_list("Set-Cookie"):
        cookies.load(header)
    csrf = cookies["csrftoken"].value
    status, creds = await api("GET", "labeling/login")
    assert status == 200, creds
    login = await jp_fetch(
        "pachls", "labelstudio", "user", "login/", method="POST", follow_redirects=False, raise_error=False,
        body=urlencode({"csrfmiddlewaretoken": csrf, "email": creds["email"], "password": creds["password"]}),
        headers={"Cookie": f"csrftoken={csrf}", "Content-Type": "application/x-www-form-urlencoded",
                 "Referer": login_page.effective_url})
    sessionid = [h for h in login.headers.get_list("Set-Cookie") if h.startswith("sessionid=")][0].split(";")[0]
    path = url[len(jp_base_url):]
    image = await jp_fetch(*path.split("?")[0].split("/"), params={"d": tasks[0]["data"]["image"].split("?d=")[1]},
                           headers={"Cookie": f"{sessionid}; csrftoken={csrf}"})
    assert image.code == 200
    served = {p: data for p, data in demo_files()[:2]}[tasks[0]["data"]["pachls_path"]]
    assert image.body == served


async def test_fonts_and_service_worker_load_under_the_proxy_prefix(jp_fetch, api, jp_base_url):
    """Label Studio's stylesheets and app name root paths (``url(/static/fonts/...)``, ``"/sw.js"``) that
    would reach Jupyter's own routes: the proxy rewrites them under its prefix, where they are served."""
    await wait_running(api)
    prefix = f"{jp_base_url}pachls/labelstudio"
    css = (await jp_fetch("pachls", "labelstudio", "react-app", "main.css")).body.decode()
    fonts = re.findall(r"""url\(["']?([^)"']*Figtree-Regular\.ttf)""", css)
    assert fonts and all(f == f"{prefix}/static/fonts/Figtree-Regular.ttf" for f in fonts), fonts
    font = await jp_fetch(*fonts[0][len(jp_base_url):].split("/"))
    assert font.code == 200 and font.body[:4] in (b"\x00\x01\x00\x00", b"OTTO", b"true")

    app = (await jp_fetch("pachls", "labelstudio", "react-app", "main.js")).body.decode()
    assert f'"{prefix}/sw.js"' in app and '"/sw.js"' not in app
    worker = await jp_fetch("pachls", "labelstudio", "sw.js")
    assert worker.code == 200 and "javascript" in worker.headers["Content-Type"]
    assert b"CACHE_NAME" in worker.body
