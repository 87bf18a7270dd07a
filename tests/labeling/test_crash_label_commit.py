"""Label commits cut short by a SIGKILLed Jupyter server (a real ``jupyter server`` subprocess using
the session's Label Studio as a team server): every annotation is in the labels commit or still
pending after the restart, never half-committed. What is checked: ``tests/crashlabels.py``; the
long variant, with the server's own managed Label Studio, is ``stress/crash_trials.py --mode labels``."""

from __future__ import annotations

import uuid

from crashlabels import LabelTrials
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
