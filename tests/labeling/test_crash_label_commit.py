"""Label commits cut short by a SIGKILLed Jupyter server (a real ``jupyter server`` subprocess using
the session's Label Studio as a team server): every annotation is in the labels commit or still
pending after the restart, never half-committed. What is checked: ``tests/crashlabels.py``; the
long variant, with the server's own managed Label Studio, is ``stress/crash_trials.py --mode labels``."""

from __future__ import annotations

import uuid

import pytest

from crashlabels import LabelTrials, copy_label_studio_dir, end_process_group, label_studio_pids, wait_label_studio
from serverproc import JupyterServer, alive
from jupyterlab_pachls.mount.fusefs import fuse_available

PHASES = ["early", "random", "late"]


def test_label_commit_crash_trials(tmp_path, label_studio, ls_document_root):
    no_fuse = not fuse_available()[0]  # the labels mount as the server makes it: FUSE where usable
    runner = LabelTrials(tmp_path, label_studio=(label_studio.url, label_studio.credentials.token),
                         mount_dir=ls_document_root / f"crash-{uuid.uuid4().hex[:8]}", no_fuse=no_fuse,
                         seed=3, phases=PHASES)
    stats = runner.run(len(PHASES))
    print(runner.figures())
    print(f"labels: {stats.summary()}")
    assert stats.problems == []
    assert stats.trials == len(PHASES) and stats.landed >= 1 and stats.absent >= 1
    assert (stats.corrupt, stats.lost) == (0, 0)


@pytest.mark.xfail(strict=True, reason="the managed Label Studio runs in its own session and outlives a SIGKILLed "
                   "server; nothing ends it at the next start (ManagedLabelStudio.start needs a pid file)")
def test_no_label_studio_outlives_a_killed_server(tmp_path, label_studio):
    """The server's own (managed) Label Studio: after a SIGKILL of the server and a restart, only the new
    server's Label Studio runs; the one the killed server started does not linger holding its port."""
    server = JupyterServer(tmp_path / "root", store=tmp_path / "store")
    copy_label_studio_dir(label_studio.data_dir, tmp_path / "labelstudio")  # migrated: starts in seconds
    killed: list[int] = []
    try:
        server.start()
        wait_label_studio(server)
        killed = label_studio_pids(server)
        assert killed
        server.kill()
        server.start()
        status = wait_label_studio(server)  # the next server copes: its own Label Studio answers
        assert status["state"] == "running"
        lingering = [pid for pid in killed if alive(pid)]
        assert lingering == [], f"Label Studio {lingering} of the killed server still runs"
    finally:
        fresh = label_studio_pids(server) if server.running else []
        server.stop()
        for pid in killed + fresh:
            if alive(pid):
                end_process_group(pid)
