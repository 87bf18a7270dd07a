"""Label commits cut short by a SIGKILLed Jupyter server (a real ``jupyter server`` subprocess using
the session's Label Studio as a team server): every annotation is in the labels commit or still
pending after the restart, never half-committed. What is checked: ``tests/crashlabels.py``; the
long variant, with the server's own managed Label Studio, is ``stress/crash_trials.py --mode labels``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

from crashlabels import (LabelStudioAPI, LabelTrials, copy_label_studio_dir, end_process_group, label_studio_pids,
                         wait_label_studio)
from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.labeling.session import LabelingService
from jupyterlab_pachls.mount import MountManager
from jupyterlab_pachls.pfs import LocalBackend
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


CUT_SHORT = textwrap.dedent("""
    import os, signal, sys
    from jupyterlab_pachls.labeling.labelstudio import ExternalLabelStudio
    from jupyterlab_pachls.labeling.session import LabelingService
    from jupyterlab_pachls.mount import MountManager
    from jupyterlab_pachls.pfs import LocalBackend
    store, mount_dir, state_dir, labeling_dir, url, token, session_id = sys.argv[1:8]
    backend = LocalBackend(store)
    mounts = MountManager(backend, mount_dir, state_dir, fuse=False)

    def killed(*args, **kwargs):  # the label files are written; the server dies before the mount commit
        os.kill(os.getpid(), signal.SIGKILL)

    mounts.commit = killed
    service = LabelingService(lambda: backend, lambda: mounts, ExternalLabelStudio(url, token), labeling_dir)
    service.commit_labels(session_id, message="cut short", author="ana")
""")


def test_a_label_file_left_by_a_cut_short_commit_is_not_committed_after_its_annotation_is_gone(
        tmp_path, label_studio, ls_document_root):
    """Killed after writing the label files into the labels mount, before committing them; then an
    annotation is deleted in Label Studio: the next label commit must not carry its label file."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("images")
    with backend.commit("images", "master", message="data", author="demo") as c:
        c.put_files(demo_files())
    mount_dir, state_dir = ls_document_root / f"cut-{uuid.uuid4().hex[:8]}", tmp_path / "mount-state"
    mounts = MountManager(backend, mount_dir, state_dir, fuse=False)
    service = LabelingService(lambda: backend, lambda: mounts, label_studio, tmp_path / "labeling")
    session = service.create_session(data="images@master", labels="labels@master", glob="/cats/00[12].png",
                                     template="image-classification", classes=["cat", "dog"], user="ana")
    ls = LabelStudioAPI(label_studio.url, label_studio.credentials.token)
    try:
        tasks = ls.tasks(session.project_id)
        ls.annotate(tasks["/cats/001.png"]["id"], "cat")
        ls.annotate(tasks["/cats/002.png"]["id"], "dog")
        mounts.close()
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        done = subprocess.run([sys.executable, "-c", CUT_SHORT, str(tmp_path / "store"), str(mount_dir),
                               str(state_dir), str(tmp_path / "labeling"), label_studio.url,
                               label_studio.credentials.token, session.id], env=env, timeout=300)
        assert done.returncode == -9
        mounts = MountManager(backend, mount_dir, state_dir, fuse=False)
        assert {c.path for c in mounts.changes(session.labels_mount).changes} == {
            "/cats/001.png.json", "/cats/002.png.json"}  # staged by the commit that was cut short
        for annotation in ls.annotations(tasks["/cats/002.png"]["id"]):
            ls.delete(annotation["id"])
        assert service.pending(session.id).added == ("/cats/001.png.json",)
        landed = service.commit_labels(session.id, message="after the crash", author="ana")
        committed = {i.path for i in backend.walk("labels", landed.id) if not i.is_dir}
        assert committed == {"/cats/001.png.json"}, "a label file without an annotation was committed"
    finally:
        ls.close()
        mounts.close()
        backend.close()
