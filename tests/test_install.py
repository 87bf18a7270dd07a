"""After install, Jupyter lists the server extension and the labextension as enabled and OK."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jupyterlab_pachls

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROOT = Path(__file__).resolve().parents[1]


def jupyter(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ANSI.sub("", result.stdout + result.stderr)


def test_server_extension_enabled_and_ok():
    out = jupyter("server", "extension", "list")
    assert re.search(r"^\s*jupyterlab_pachls\s+enabled\s*$", out, re.M), out
    assert re.search(
        rf"^\s*jupyterlab_pachls\s+{re.escape(jupyterlab_pachls.__version__)}\s+OK\s*$", out, re.M
    ), out


def test_labextension_enabled_and_ok():
    out = jupyter("labextension", "list")
    version = json.loads((ROOT / "package.json").read_text())["version"]
    assert re.search(
        rf"^\s*jupyterlab-pachls\s+v{re.escape(version)}\s+enabled\s+OK\b", out, re.M
    ), out


def test_python_and_npm_versions_agree():
    version = json.loads((ROOT / "package.json").read_text())["version"]
    assert jupyterlab_pachls.__version__ == version


def test_labextension_paths_point_at_a_built_extension():
    (paths,) = jupyterlab_pachls._jupyter_labextension_paths()
    assert paths["dest"] == "jupyterlab-pachls"
    built = Path(jupyterlab_pachls.__file__).parent / paths["src"]
    assert (built / "static" / "style.js").is_file()
    meta = json.loads((built / "package.json").read_text())
    assert meta["name"] == "jupyterlab-pachls"
    assert meta["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def test_server_extension_points():
    (point,) = jupyterlab_pachls._jupyter_server_extension_points()
    assert point["module"] == "jupyterlab_pachls"
    assert point["app"].name == "jupyterlab_pachls"
