"""The managed Label Studio process: real ``label-studio``, started, killed, restarted."""

from __future__ import annotations

import os
import signal
import stat

import httpx

from jupyterlab_pachls.labeling.labelstudio import ManagedLabelStudio


def test_managed_label_studio_answers_with_its_generated_admin(label_studio):
    status = label_studio.status()
    assert status.state == "running" and status.url.startswith("http://127.0.0.1:")
    users = httpx.get(f"{label_studio.url}/api/users/",
                      headers={"Authorization": f"Token {label_studio.credentials.token}"}).json()
    assert label_studio.credentials.email in [u["email"] for u in users]
    refused = httpx.get(f"{label_studio.url}/api/users/", headers={"Authorization": "Token wrong"})
    assert refused.status_code == 401


def test_credentials_stay_private(label_studio):
    mode = stat.S_IMODE(os.stat(label_studio.data_dir / "credentials.json").st_mode)
    assert mode == 0o600
    again = ManagedLabelStudio(label_studio.data_dir, label_studio.document_root)
    assert again.credentials == label_studio.credentials
    log = label_studio.log_tail(10_000)
    assert label_studio.credentials.password not in log and label_studio.credentials.token not in log


def test_listens_on_loopback_only(label_studio):
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.read().splitlines()[1:]]
    port = f"{label_studio.port:04X}"
    listeners = [r[1] for r in rows if r[1].endswith(":" + port) and r[3] == "0A"]
    assert listeners and all(address.startswith("0100007F:") for address in listeners)


def test_killed_label_studio_is_restarted(label_studio):
    before = label_studio.status().restarts
    victim = label_studio._process
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)
    assert label_studio.status().state == "starting"
    label_studio.wait_ready(300)
    status = label_studio.status()
    assert status.state == "running" and status.restarts == before + 1
    assert httpx.get(f"{label_studio.url}/health").status_code == 200
