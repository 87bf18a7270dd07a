"""One store for the server extension, ``connect()`` and ``jupyter pachls serve``: ``PachlsConfig.store_dir``
from the Jupyter config files, else ``$PACHLS_STORE``, else ``<jupyter data dir>/pachls/store``."""

from __future__ import annotations

import json

import pytest

from jupyterlab_pachls.config import resolve_store
from jupyterlab_pachls.pfs.server import cli


@pytest.fixture
def jupyter_dirs(tmp_path, monkeypatch):
    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    config_dir.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    monkeypatch.delenv("PACHLS_STORE", raising=False)
    return config_dir, data_dir


def test_default_is_under_the_jupyter_data_dir(jupyter_dirs):
    _, data_dir = jupyter_dirs
    assert resolve_store() == str(data_dir / "pachls" / "store")


def test_the_environment_comes_next(jupyter_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("PACHLS_STORE", str(tmp_path / "from-env"))
    assert resolve_store() == str(tmp_path / "from-env")


@pytest.mark.parametrize("kind", ["json", "py"])
def test_the_server_config_file_wins(jupyter_dirs, tmp_path, monkeypatch, kind):
    config_dir, _ = jupyter_dirs
    monkeypatch.setenv("PACHLS_STORE", str(tmp_path / "from-env"))
    configured = tmp_path / "configured"
    if kind == "json":
        (config_dir / "jupyter_server_config.json").write_text(
            json.dumps({"PachlsConfig": {"store_dir": str(configured)}}))
    else:
        (config_dir / "jupyter_server_config.py").write_text(f"c.PachlsConfig.store_dir = {str(configured)!r}\n")
    assert resolve_store() == str(configured)


def test_pachls_serve_serves_that_store(jupyter_dirs, tmp_path, monkeypatch):
    config_dir, _ = jupyter_dirs
    configured = tmp_path / "configured"
    (config_dir / "jupyter_server_config.json").write_text(json.dumps({"PachlsConfig": {"store_dir": str(configured)}}))
    served = []
    monkeypatch.setattr(cli, "serve", lambda store, host, port, **_options: served.append(store))
    assert cli.main(["serve"]) == 0
    assert cli.main(["serve", "--store", str(tmp_path / "explicit")]) == 0
    assert served == [str(configured), str(tmp_path / "explicit")]
