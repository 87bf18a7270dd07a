"""Who history is written as: a real Jupyter user, a saved or configured identity, git's; else 409.

Through a real Jupyter server: plain ``jupyter lab``'s token login (a made-up anonymous user per
browser) never becomes an author; a configured identity provider's user does.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from jupyter_server.auth import IdentityProvider, User

from jupyterlab_pachls.identity import (
    Identity,
    IdentityBook,
    IdentityRequired,
    check_identity,
    git_identity,
    provider_names_real_user,
    resolve_identity,
)
from jupyterlab_pachls.pfs import InvalidArgument


@pytest.fixture
def pachls_author():
    return {}  # these tests choose the identity themselves


@pytest.fixture
def no_git_identity(tmp_path, monkeypatch):
    """git with no user.name / user.email anywhere (an empty global config, no system config)."""
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)
    return empty


class HeaderUserProvider(IdentityProvider):
    """A configured provider (as a deployment would have): Jupyter's token login, naming the user a
    request header gives; without the header, Jupyter's own made-up anonymous user."""

    def generate_anonymous_user(self, handler):
        name = handler.request.headers.get("X-Test-User")
        if name:
            return User(username=name, name=name.title(), display_name=name.title())
        return super().generate_anonymous_user(handler)

    def get_user_cookie(self, handler):
        return None  # each request says who it is (the login cookie would carry the first user on)


# -- the rules, without a server ----------------------------------------------------------------------
def test_plain_jupyter_anonymous_users_are_not_real():
    anonymous = User(username="0" * 32, name="Anonymous Helike")
    assert not provider_names_real_user(IdentityProvider(), anonymous)
    assert not provider_names_real_user(IdentityProvider(), User(username="ana", name="Ana"))  # built-in: made up
    assert provider_names_real_user(HeaderUserProvider(), User(username="ana", name="Ana"))
    # a configured provider falling back to Jupyter's anonymous user is still anonymous
    assert not provider_names_real_user(HeaderUserProvider(), User(username="ab" * 16, name="Anonymous Io"))
    assert not provider_names_real_user(HeaderUserProvider(), None)


def test_order_jupyter_then_saved_then_configured_then_git(tmp_path, no_git_identity):
    book = IdentityBook(tmp_path / "identities.json")
    anonymous = User(username="c" * 32, name="Anonymous Carme")
    plain = IdentityProvider()
    assert resolve_identity(plain, anonymous, book) == Identity(None, None, None)
    subprocess.run(["git", "config", "--global", "user.name", "Gil Git"], check=True)
    subprocess.run(["git", "config", "--global", "user.email", "gil@example.com"], check=True)
    assert resolve_identity(plain, anonymous, book) == Identity("Gil Git", "gil@example.com", "git")
    assert resolve_identity(plain, anonymous, book, configured_name="Cy Conf", configured_email="cy@example.com") \
        == Identity("Cy Conf", "cy@example.com", "configured")
    book.save("", "Sam Saved", "sam@example.com")
    assert resolve_identity(plain, anonymous, book, configured_name="Cy", configured_email="cy@example.com") \
        == Identity("Sam Saved", "sam@example.com", "configured")
    hub = HeaderUserProvider()
    assert resolve_identity(hub, User(username="ana", name="Ana Lima"), book, email_domain="hub.example") \
        == Identity("Ana Lima", "ana@hub.example", "jupyter")
    book.save("ana", "Ana Lima", "ana.lima@example.com")  # a real user's own email, saved
    assert resolve_identity(hub, User(username="ana", name="Ana Lima"), book).email == "ana.lima@example.com"
    assert oct(os.stat(book.path).st_mode & 0o777) == "0o600"


def test_an_unknown_identity_refuses_to_author(no_git_identity):
    assert git_identity() is None
    with pytest.raises(IdentityRequired) as info:
        Identity(None, None, None).author
    assert info.value.code == "identity_required" and "name and email" in info.value.message
    assert Identity("Ana", "ana@example.com", "git").author == "Ana <ana@example.com>"


@pytest.mark.parametrize("name, email, field", [
    ("", "a@example.com", "name"), ("  ", "a@example.com", "name"), ("Ana\x00", "a@example.com", "name"),
    ("Ana\u202e", "a@example.com", "name"), ("Ana <x>", "a@example.com", "name"), (None, "a@example.com", "name"),
    ("Ana", "", "email"), ("Ana", "no-at", "email"), ("Ana", "a@b@c", "email"), ("Ana", "a @b", "email"),
    ("Ana", "a@b\n", "email"), ("A" * 201, "a@example.com", "name"),
])
def test_bad_identities_are_refused(name, email, field):
    with pytest.raises(InvalidArgument) as info:
        check_identity(name, email)
    assert info.value.details["field"] == field


# -- through the REST API -------------------------------------------------------------------------------
async def test_no_identity_refuses_every_history_write_until_one_is_saved(api, pachls_state, no_git_identity):
    status, body = await api("GET", "identity")
    assert (status, body) == (200, {"name": None, "email": None, "source": None, "required": True})
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="one", author="demo") as first:
        first.put_file("/a.txt", b"a")
    with backend.commit("images", "master", message="two", author="demo") as second:
        second.put_file("/b.txt", b"b")
    status, mount = await api("POST", "mounts", {"repo": "images", "branch": "master", "mode": "rw"})
    assert status == 201, mount
    pachls_state.mounts.stage_files(mount["name"], {"/c.txt": b"c"})

    status, body = await api("POST", f"mounts/{mount['name']}/commit", {"message": "mine"})
    assert (status, body["error"]) == (409, "identity_required"), body
    assert "name and email" in body["message"]
    status, body = await api("PUT", "repos/images/branches/master/head", {"commit": first.finished.id})
    assert (status, body["error"]) == (409, "identity_required"), body
    assert backend.inspect_branch("images", "master").head.id == second.finished.id  # nothing moved
    assert [c.id for c in backend.list_commits("images", "master")] == [second.finished.id, first.finished.id]

    for bad in ({"name": "Ana"}, {"name": "", "email": "a@example.com"}, {"name": "A", "email": "nope"},
                {"name": "A", "email": "a@example.com", "extra": 1}):
        status, body = await api("PUT", "identity", bad)
        assert status == 400, (bad, body)
    status, body = await api("GET", "identity")
    assert body["required"] is True  # nothing saved by the refused attempts

    status, body = await api("PUT", "identity", {"name": "Ana Lima", "email": "ana@example.com"})
    assert (status, body) == (200, {"name": "Ana Lima", "email": "ana@example.com", "source": "configured",
                                    "required": False})
    status, body = await api("POST", f"mounts/{mount['name']}/commit", {"message": "mine"})
    assert status == 201, body
    assert body["commit"]["author"] == "Ana Lima <ana@example.com>"
    status, body = await api("PUT", "repos/images/branches/master/head", {"commit": first.finished.id})
    assert status == 200, body
    status, body = await api("GET", "repos/images/branches/master/moves")
    assert body["moves"][0]["author"] == "Ana Lima <ana@example.com>"
    saved = json.loads((pachls_state.identities.path).read_text())
    assert saved == {"": {"name": "Ana Lima", "email": "ana@example.com"}}


async def test_git_identity_is_used_when_nothing_else_is_known(api, pachls_state, no_git_identity):
    subprocess.run(["git", "config", "--global", "user.name", "Gil Git"], check=True)
    subprocess.run(["git", "config", "--global", "user.email", "gil@example.com"], check=True)
    status, body = await api("GET", "identity")
    assert body == {"name": "Gil Git", "email": "gil@example.com", "source": "git", "required": False}
    pachls_state.backend.create_repo("images")
    status, mount = await api("POST", "mounts", {"repo": "images", "branch": "master", "mode": "rw"})
    pachls_state.mounts.stage_files(mount["name"], {"/a.txt": b"a"})
    status, body = await api("POST", f"mounts/{mount['name']}/commit", {"message": "first"})
    assert status == 201 and body["commit"]["author"] == "Gil Git <gil@example.com>"


class TestConfiguredSetting:
    @pytest.fixture
    def pachls_config(self):
        return {"PachlsConfig": {"user_name": "Cy Conf", "user_email": "cy@example.com"}}

    async def test_the_setting_names_the_author(self, api, no_git_identity):
        status, body = await api("GET", "identity")
        assert body == {"name": "Cy Conf", "email": "cy@example.com", "source": "configured", "required": False}


class TestRealJupyterUsers:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        config = dict(jp_server_config)
        config["ServerApp"] = {**config["ServerApp"], "identity_provider_class": HeaderUserProvider}
        config["PachlsConfig"] = {"user_email_domain": "hub.example"}
        return config

    async def test_each_request_is_authored_by_its_jupyter_user(self, jp_fetch, pachls_state, no_git_identity):
        async def call(method, path, user=None, body=None):
            headers = {"X-Test-User": user} if user else {}
            response = await jp_fetch("pachls", "api", *path.split("/"), method=method, headers=headers,
                                      raise_error=False, body=json.dumps(body) if body is not None else
                                      (b"" if method in ("POST", "PUT") else None))
            return response.code, json.loads(response.body)

        status, body = await call("GET", "identity", "ana")
        assert body == {"name": "Ana", "email": "ana@hub.example", "source": "jupyter", "required": False}
        # the token alone (no user header): Jupyter's made-up anonymous user, never an author
        status, body = await call("GET", "identity")
        assert body["required"] is True and body["source"] is None
        # the provider names Bo: another name is refused, not silently dropped; his email is saved
        status, body = await call("PUT", "identity", "bo", {"name": "Bo Ray", "email": "bo@example.com"})
        assert (status, body["error"], body["details"]["field"]) == (400, "invalid_argument", "name"), body
        assert "identity provider" in body["message"]
        status, body = await call("PUT", "identity", "bo", {"name": "Bo", "email": "bo@example.com"})
        assert body == {"name": "Bo", "email": "bo@example.com", "source": "jupyter", "required": False}

        pachls_state.backend.create_repo("images")
        status, mount = await call("POST", "mounts", "ana", {"repo": "images", "branch": "master", "mode": "rw"})
        for user, path in (("ana", "/a.txt"), ("bo", "/b.txt")):
            pachls_state.mounts.stage_files(mount["name"], {path: b"x"})
            status, body = await call("POST", f"mounts/{mount['name']}/commit", user, {"message": path})
            assert status == 201, body
        authors = [c.author for c in pachls_state.backend.list_commits("images", "master")]
        assert authors == ["Bo <bo@example.com>", "Ana <ana@hub.example>"]

    async def test_no_one_takes_another_jupyter_users_email(self, jp_fetch, no_git_identity):
        async def put(user, email):
            response = await jp_fetch("pachls", "api", "identity", method="PUT", headers={"X-Test-User": user},
                                      raise_error=False, body=json.dumps({"name": user.title(), "email": email}))
            return response.code, json.loads(response.body)

        assert (await put("bo", "bo@example.com"))[0] == 200
        # Bo's saved email, in any case, and the default address of a provider-named user (Cy, who
        # never saved one) are not Ana's to take
        for email in ("bo@example.com", "BO@Example.COM", "cy@hub.example", "Cy@HUB.example"):
            status, body = await put("ana", email)
            assert (status, body["error"]) == (409, "conflict"), (email, body)
            assert "another Jupyter user" in body["message"] or "not yours" in body["message"]
        assert (await put("ana", "ana@hub.example"))[0] == 200  # her own default address
        assert (await put("ana", "ana@example.org"))[0] == 200
        response = await jp_fetch("pachls", "api", "identity", headers={"X-Test-User": "ana"})
        assert json.loads(response.body)["email"] == "ana@example.org"


class TestRollbackBelowAMount:
    @pytest.fixture
    def pachls_author(self):
        return {"user_name": "Ana Lima", "user_email": "ana@example.com"}

    async def test_a_mount_whose_base_was_rolled_back_is_diverged_not_negative(self, api, pachls_state):
        backend = pachls_state.backend
        backend.create_repo("labels")
        with backend.commit("labels", "master", message="one", author="demo") as first:
            first.put_file("/a.json", b"1")
        with backend.commit("labels", "master", message="two", author="demo") as second:
            second.put_file("/a.json", b"2")
        status, mount = await api("POST", "mounts", {"repo": "labels", "branch": "master", "mode": "rw"})
        assert status == 201 and (mount["behind"], mount["diverged"]) == (0, False), mount
        status, moved = await api("PUT", "repos/labels/branches/master/head", {"commit": first.finished.id})
        assert status == 200, moved
        status, shown = await api("GET", f"mounts/{mount['name']}")
        assert (shown["base"], shown["behind"], shown["diverged"]) == (second.finished.id, 0, True), shown
        status, listed = await api("GET", "mounts")
        assert [(m["behind"], m["diverged"]) for m in listed["mounts"]] == [(0, True)]
        status, refreshed = await api("POST", f"mounts/{mount['name']}/refresh")
        assert (refreshed["base"], refreshed["behind"], refreshed["diverged"]) == (first.finished.id, 0, False)
