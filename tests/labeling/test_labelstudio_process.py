"""The managed Label Studio process: real ``label-studio``, started, killed, restarted."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from crashlabels import copy_label_studio_dir
from jupyterlab_pachls.labeling.labelstudio import PID_FILE, ManagedLabelStudio, free_port, process_start_time
from serverproc import REPO_ROOT, alive, descendants


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


def test_a_restart_is_not_ready_before_it_answers(tmp_path, monkeypatch):
    """A restart's new process is not taken for the one that answered before it: a call made just as the
    watchdog restarts waits for it (it was sent to a port nothing listened on yet: 'unreachable')."""
    process = ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs", port=free_port())
    monkeypatch.setattr(process, "command", lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    ready_while_starting = []
    monkeypatch.setattr(process, "_write_pid_file", lambda _started: ready_while_starting.append(process.ready()))
    process._state = "running"  # as when the process the watchdog replaces had answered
    process.start()
    try:
        assert ready_while_starting == [False] and process.status().state == "starting"
    finally:
        process.stop()


# -- no Label Studio outlives the server that started it ------------------------------------------

OWNER = textwrap.dedent("""
    import sys, time
    from jupyterlab_pachls.labeling import labelstudio
    data_dir, document_root, death_signal = sys.argv[1:4]
    if death_signal == "off":  # as where setpriv is missing or the death signal does not reach the whole group
        labelstudio._die_with_parent = lambda: []
    process = labelstudio.ManagedLabelStudio(data_dir, document_root)
    process.start()
    process.wait_ready(600)
    print(process._process.pid, flush=True)
    time.sleep(3600)
""")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _owner_killed(tmp_path, label_studio, death_signal: str) -> tuple[int, Path]:
    """A process that starts a managed Label Studio (on a migrated copy) and is then SIGKILLed; the LS pid."""
    data_dir = tmp_path / "labelstudio"
    copy_label_studio_dir(label_studio.data_dir, data_dir)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(data_dir), str(tmp_path / "docs"), death_signal],
                             env=env, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(owner.stdout.readline())
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
    return pid, data_dir


def test_label_studio_ends_with_its_killed_server(tmp_path, label_studio):
    """No next server: the death signal ends Label Studio when the server that started it is SIGKILLed."""
    pid, _ = _owner_killed(tmp_path, label_studio, "on")
    try:
        assert _gone_within(pid, 60), "Label Studio outlived its SIGKILLed server"
    finally:
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_next_start_ends_the_label_studio_a_killed_server_left(tmp_path, label_studio):
    """Without the death signal the killed server's Label Studio lingers; the next start ends it first."""
    pid, data_dir = _owner_killed(tmp_path, label_studio, "off")
    process = ManagedLabelStudio(data_dir, tmp_path / "docs")
    try:
        assert alive(pid), "the leftover to clean up"
        process.start()
        assert not alive(pid), "a second Label Studio was started over the leftover's database"
        process.wait_ready(600)
        assert process.status().state == "running"
        record = json.loads((data_dir / PID_FILE).read_text())
        assert record["pid"] == process._process.pid
    finally:
        process.stop()
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
    assert not (data_dir / PID_FILE).exists(), "stop() leaves no pid file behind"


def _pid_file(data_dir, pid: int, server: int, server_start: int | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / PID_FILE).write_text(json.dumps({"pid": pid, "start": process_start_time(pid), "server": server,
                                                 "server_start": server_start or 0}))


@pytest.fixture
def gone_server() -> int:
    """The pid of a process that has ended (a killed server)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


@pytest.mark.parametrize("argv", [["sleep", "300"], [sys.executable, "-c", "import time; time.sleep(300)"]])
def test_a_pid_file_naming_a_live_process_that_is_not_label_studio_kills_nothing(tmp_path, gone_server, argv):
    bystander = subprocess.Popen(argv, start_new_session=True)
    try:
        _pid_file(tmp_path / "ls", bystander.pid, gone_server, None)
        process = ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs")
        assert process.end_leftover() is False
        assert bystander.poll() is None and alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()


def test_a_pid_file_with_another_start_time_kills_nothing(tmp_path, gone_server):
    """The pid was reused by a later process (even one that looks like Label Studio): left alone."""
    lookalike = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "label-studio"],
                                 start_new_session=True)
    try:
        _pid_file(tmp_path / "ls", lookalike.pid, gone_server, None)
        record = json.loads((tmp_path / "ls" / PID_FILE).read_text())
        (tmp_path / "ls" / PID_FILE).write_text(json.dumps({**record, "start": record["start"] - 1}))
        assert ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs").end_leftover() is False
        assert lookalike.poll() is None
    finally:
        lookalike.kill()
        lookalike.wait()


def test_a_label_studio_whose_server_still_runs_is_left_alone(tmp_path):
    """Another live server's Label Studio on the same data dir: ending it would make two watchdogs fight."""
    lookalike = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "label-studio"],
                                 start_new_session=True)
    try:
        _pid_file(tmp_path / "ls", lookalike.pid, os.getpid(), process_start_time(os.getpid()))
        assert ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs").end_leftover() is False
        assert lookalike.poll() is None
    finally:
        lookalike.kill()
        lookalike.wait()


def test_a_leftover_label_studio_of_a_gone_server_is_ended_with_its_group(tmp_path, gone_server):
    lookalike = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)",
         "label-studio"], start_new_session=True)
    children: list[int] = []
    try:
        while not children:  # wait until it has started its child
            assert lookalike.poll() is None
            children = descendants(lookalike.pid)
            time.sleep(0.05)
        _pid_file(tmp_path / "ls", lookalike.pid, gone_server, None)
        assert ManagedLabelStudio(tmp_path / "ls", tmp_path / "docs").end_leftover() is True
        lookalike.wait(30)
        assert [pid for pid in children if alive(pid)] == [], "its child outlived it"
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if lookalike.poll() is None:
            lookalike.kill()
            lookalike.wait()
