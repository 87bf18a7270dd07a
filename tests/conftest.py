"""Shared fixtures: a real Jupyter server (pytest-jupyter) with the extension loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jupyterlab_pachls.mount import fuse_status

# workers: how scripts/test.sh splits the tests over two processes (pytest-xdist)
pytest_plugins = ("pytest_jupyter.jupyter_server", "workers")

# Every test (and every server it starts) sees no git identity, whatever this machine's git config
# holds: authors come from what a test gives, and a missing one shows here as on any machine.
os.environ["GIT_CONFIG_GLOBAL"] = os.devnull
os.environ["GIT_CONFIG_NOSYSTEM"] = "1"

EXTENSION = "jupyterlab_pachls"

@pytest.fixture
def shell(client):
    """A real IPython shell with the ``%pachls`` magics over the requesting module's ``client`` fixture."""
    from IPython.core.interactiveshell import InteractiveShell

    from jupyterlab_pachls.magics import PachlsMagics

    ip = InteractiveShell.instance()
    ip.register_magics(PachlsMagics(ip, client_factory=lambda: client))
    yield ip
    InteractiveShell.clear_instance()


@pytest.fixture
def pachls_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh store directory, handed to the server through ``PACHLS_STORE``."""
    store = tmp_path / "pachls-store"
    monkeypatch.setenv("PACHLS_STORE", str(store))
    return store


@pytest.fixture(params=["fuse", "no-fuse"])
def presentation(request, monkeypatch):
    """How the server presents mounts (``PACHLS_NO_FUSE``); a test module opts in by using it."""
    if request.param == "fuse":
        monkeypatch.delenv("PACHLS_NO_FUSE", raising=False)
        available, why = fuse_status()
        if not available:
            pytest.skip(f"FUSE is not available here: {why}")
    else:
        monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    return request.param


@pytest.fixture
def pachls_config() -> dict:
    """Extra traitlets config for the server; override in a test module to change it."""
    return {}


@pytest.fixture
def pachls_author() -> dict:
    """The author of what test servers commit (their HOME has no git identity and the token's user is
    Jupyter's anonymous one); ``{}`` in a test module that checks what happens without one."""
    return {"user_name": "Test Author", "user_email": "author@example.com"}


@pytest.fixture
def jp_server_config(pachls_store: Path, pachls_config: dict, pachls_author: dict) -> dict:
    config: dict = {"ServerApp": {"jpserver_extensions": {EXTENSION: True}}, "PachlsConfig": dict(pachls_author)}
    for section, values in pachls_config.items():
        config[section] = {**config.get(section, {}), **values}
    return config


@pytest.fixture
def pachls_state(jp_serverapp):
    """What the handlers share (config and backend), as the running server holds it."""
    return jp_serverapp.web_app.settings["pachls"]


@pytest.fixture
def api(jp_fetch):
    """``await api("GET", "repos")`` → (status, decoded JSON), without raising on HTTP errors."""

    async def call(method: str, path: str, body: object = None, raw: bytes | None = None):
        # The server's own deadlines decide when a call gives up (a label commit waits up to 60 s for a
        # restarting Label Studio), not tornado's default 20 s: on a loaded machine that cut such calls.
        kwargs: dict = {"method": method, "raise_error": False, "request_timeout": 120}
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        response = await jp_fetch("pachls", "api", *path.split("/"), **kwargs)
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    return call
