"""A Label Studio command the server runs (``reset_password``, through Label Studio's own CLI) that
does not finish within its deadline is ended and answered as the typed ``Unavailable``, not left to
raise ``subprocess.TimeoutExpired`` (a 500 with a traceback). The command is a stand-in that hangs
(a Python child that sleeps), run exactly as the real one would be."""

from __future__ import annotations

import sys

import pytest

from jupyterlab_pachls.labeling import labelstudio
from jupyterlab_pachls.labeling.labelstudio import ManagedLabelStudio
from jupyterlab_pachls.pfs.errors import Unavailable


def test_a_hung_reset_password_is_unavailable_within_its_deadline(tmp_path, monkeypatch):
    monkeypatch.setattr(labelstudio, "COMMAND_TIMEOUT", 0.5)
    managed = ManagedLabelStudio(tmp_path / "labelstudio", tmp_path / "documents")
    monkeypatch.setattr(managed, "command", lambda: [sys.executable, "-c", "import time; time.sleep(60)", "start"])
    with pytest.raises(Unavailable) as info:
        managed.reset_password("ana@example.com", "a-password")
    assert info.value.details == {"label_studio": "timeout", "call": "reset_password", "deadline": 0.5}
    assert "ana@example.com" in info.value.message and "0.5 s" in info.value.message
