"""Crash trials of label commits: the Jupyter server SIGKILLed during ``POST .../sessions/{id}/commit``.

Used by ``tests/labeling/test_crash_label_commit.py`` (a team Label Studio: the session fixture's)
and ``stress/crash_trials.py --mode labels`` (the server's own managed Label Studio, a child of the
server: what becomes of it when the server is killed is counted too).

One labeling session (``images@master`` -> ``labels@master``, image classification) across N
trials. Each trial changes annotations through Label Studio's API (new, changed, deleted), reads
what a label commit would change (``GET .../pending``), POSTs the commit while a killer SIGKILLs the
server after a random delay, then, with the server dead, checks the store (fsck; the labels branch
holds the old head or ONE new commit changing exactly the pending label files, each label file
holding the annotations Label Studio has for its task, read once the restarted server reports its
Label Studio running: the managed one ends with the killed server) and, after a restart, that every
annotation is either in the labels commit or still pending, and that the labels mount is up on the head.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import httpx
from crashtrial import Trials, TrialStats, note_settled, open_commits, our_fuse_mounts, served
from serverproc import JupyterServer, alive

from jupyterlab_pachls.demo import demo_files
from jupyterlab_pachls.pfs import LocalBackend, NotFound

LABELS = ["cat", "dog", "bird"]


def label_studio_pids(server: JupyterServer) -> list[int]:
    """The ``label-studio`` processes a running server started (its managed Label Studio)."""
    found = []
    for pid in server.descendants():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"label-studio" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def wait_label_studio(server: JupyterServer, timeout: float = 900) -> dict:
    """Start the server's managed Label Studio (POST /labeling) and wait until it runs; its status."""
    deadline = time.monotonic() + timeout
    while True:
        _status, body = server.api("GET", "labeling")
        ls = body["label_studio"]
        if ls["state"] == "running":
            return ls
        if ls["state"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"Label Studio did not start: {ls}")
        if ls["state"] == "stopped":
            server.api("POST", "labeling")
        time.sleep(0.5)


def copy_label_studio_dir(source: Path, target: Path) -> None:
    """A managed Label Studio data dir from a migrated one (its database through SQLite's backup)."""
    import sqlite3

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("label-studio.log", "export", "*.sqlite3*"))
    src = sqlite3.connect(f"file:{Path(source) / 'label_studio.sqlite3'}?mode=ro", uri=True)
    dst = sqlite3.connect(Path(target) / "label_studio.sqlite3")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def end_process_group(pid: int) -> None:
    """SIGKILL a process started in its own session (its group id is its pid) and what it started."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LabelStudioAPI:
    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=120)

    def tasks(self, project: int) -> dict[str, dict]:
        found, page = {}, 1
        while True:
            response = self.client.get("/api/tasks/", params={"project": project, "page": page, "page_size": 100})
            response.raise_for_status()
            body = response.json()
            items = body["tasks"] if isinstance(body, dict) else body
            for task in items:
                found[task["data"]["pachls_path"]] = task
            if len(items) < 100:
                return found
            page += 1

    def annotations(self, task_id: int) -> list[dict]:
        response = self.client.get(f"/api/tasks/{task_id}/annotations/")
        response.raise_for_status()
        return response.json()

    def annotate(self, task_id: int, label: str) -> None:
        self.client.post(f"/api/tasks/{task_id}/annotations/", json={
            "result": [{"from_name": "choice", "to_name": "image", "type": "choices",
                        "value": {"choices": [label]}}], "lead_time": 1.0}).raise_for_status()

    def relabel(self, annotation_id: int, label: str) -> None:
        self.client.patch(f"/api/annotations/{annotation_id}/", json={
            "result": [{"from_name": "choice", "to_name": "image", "type": "choices",
                        "value": {"choices": [label]}}]}).raise_for_status()

    def delete(self, annotation_id: int) -> None:
        self.client.delete(f"/api/annotations/{annotation_id}/").raise_for_status()

    def close(self) -> None:
        self.client.close()


def label_choices(document: dict) -> list[tuple]:
    return sorted((a["id"], tuple(r["value"]["choices"][0] for r in a["result"])) for a in document["annotations"])


def ls_choices(annotations: list[dict]) -> list[tuple]:
    return sorted((a["id"], tuple(r["value"]["choices"][0] for r in a["result"])) for a in annotations
                  if not a.get("was_cancelled"))


class LabelTrials(Trials):
    """``label_studio``: None for the server's managed Label Studio, else (url, token) of a team one;
    ``mount_dir`` must then be inside that Label Studio's local-files document root."""

    def __init__(self, workdir: Path, *, label_studio: tuple[str, str] | None = None, mount_dir: Path | None = None,
                 no_fuse: bool = False, seed: int = 0, phases: list[str] | None = None,
                 ls_template: Path | None = None, log=print) -> None:
        self.workdir = Path(workdir)
        self.rng = random.Random(seed)
        self.log = log
        self.phases = phases
        # label commits need an author; the trials name one rather than depend on the machine's git
        config = {"PachlsConfig.user_name": "Crash Trials", "PachlsConfig.user_email": "trials@example.com"}
        if label_studio is not None:
            config.update({"PachlsConfig.label_studio_url": label_studio[0],
                           "PachlsConfig.label_studio_token": label_studio[1]})
        self.external = label_studio
        self.ls_template = ls_template  # a managed Label Studio data dir to start from (skips its migration)
        self.server = JupyterServer(self.workdir / "root", store=self.workdir / "store", mount_dir=mount_dir,
                                    no_fuse=no_fuse, config=config)
        self.stats = TrialStats("labels" + ("-nofuse" if no_fuse else ""))
        self.stats_orphans = 0
        self.latency = 0.5
        self.session: dict = {}
        self.ls: LabelStudioAPI | None = None
        self.head: str | None = None

    # -- setup -------------------------------------------------------------------------
    def _connect_ls(self) -> None:
        if self.ls is not None:
            self.ls.close()
        if self.external:
            url, token = self.external
        else:  # the managed one: its URL is in the status, its token in its data dir
            url = wait_label_studio(self.server)["url"]
            token = json.loads((self.workdir / "labelstudio/credentials.json").read_text())["token"]
        self.ls = LabelStudioAPI(url, token)

    def setup(self) -> None:
        if not self.external and self.ls_template and Path(self.ls_template, "label_studio.sqlite3").exists():
            copy_label_studio_dir(self.ls_template, self.workdir / "labelstudio")
        store = LocalBackend(self.server.store)
        try:
            store.create_repo("images")
            with store.commit("images", "master", message="data", author="demo") as c:
                c.put_files(demo_files())
        finally:
            store.close()
        self.server.start()
        status, body = self.server.api("POST", "labeling/sessions", {
            "data": "images@master", "labels": "labels@master", "template": "image-classification",
            "classes": LABELS}, timeout=900)
        assert status in (200, 201), body
        self.session = body
        self._connect_ls()

    def _label_ls_pids(self) -> list[int]:
        return label_studio_pids(self.server)

    # -- a trial -----------------------------------------------------------------------
    def annotate(self) -> None:
        tasks = self.ls.tasks(self.session["project_id"])
        for path in self.rng.sample(sorted(tasks), self.rng.randint(1, 4)):
            task = tasks[path]
            current = self.ls.annotations(task["id"])
            draw = self.rng.random()
            if current and draw < 0.25:
                self.ls.delete(current[0]["id"])
            elif current and draw < 0.6:
                self.ls.relabel(current[0]["id"], self.rng.choice(LABELS))
            else:
                self.ls.annotate(task["id"], self.rng.choice(LABELS))

    def trial(self, number: int) -> None:
        stats, sid = self.stats, self.session["id"]
        self.annotate()
        status, pending = self.server.api("GET", f"labeling/sessions/{sid}/pending", timeout=300)
        assert status == 200, pending
        if pending["count"] == 0:
            self.ls.annotate(self.ls.tasks(self.session["project_id"])["/cats/001.png"]["id"], "cat")
            status, pending = self.server.api("GET", f"labeling/sessions/{sid}/pending", timeout=300)
        expected = {**{p: "added" for p in pending["added"]}, **{p: "modified" for p in pending["modified"]},
                    **{p: "deleted" for p in pending["deleted"]}}
        phase = self.phase(number)
        if self.stats.commit_seconds and self.rng.random() < 0.7:  # aim at the landing: the end of the request
            aimed = self.stats.commit_seconds[-1] * self.rng.uniform(0.75, 1.05)
        else:
            aimed = self.rng.uniform(0, 1.5 * self.latency)
        delay = {"early": 0.0, "late": None}.get(phase, aimed)
        children = self._label_ls_pids()
        _, acknowledged = self.commit_and_kill(number, f"labeling/sessions/{sid}/commit", f"labels {number}",
                                                    delay, timeout=300, what="the label commit")
        time.sleep(0.2)
        orphans = [pid for pid in children if alive(pid)]  # killed with the server, or left running?
        if orphans:
            self.stats_orphans += 1

        corrupt = lost = 0
        landed_files: dict[str, dict] = {}
        previous = self.head
        store = LocalBackend(self.server.store)
        try:
            report = store.fsck(verify_content=True)
            if not report.ok:
                corrupt += 1
                stats.problem(number, f"fsck: {report.problems[:5]}")
            try:
                head = store.inspect_branch("labels", "master").head
            except NotFound:
                head = None
            head_id = head.id if head else None
            if head_id == self.head:
                stats.absent += 1
                if acknowledged:
                    lost += 1
                    stats.problem(number, "an acknowledged label commit is absent")
            elif head is not None and head.parent == self.head:
                stats.landed += 1
                changed = {d.path: d.change for d in store.diff("labels", self.head, head.id)}
                if changed != expected:
                    corrupt += 1
                    stats.problem(number, f"the label commit changed {changed}, pending was {expected}")
                # compared with Label Studio after the restart: the managed one died with the server
                landed_files = {path: json.loads(store.get_file("labels", head.id, path))
                                for path, change in changed.items() if change != "deleted"}
                self.head = head_id
            else:
                corrupt += 1
                stats.problem(number, f"the labels branch moved to {head_id}, parent {head and head.parent}")
                self.head = head_id
        finally:
            store.close()

        self.server.start()
        note_settled(stats, self.server.log_text())
        if not self.external:
            self._connect_ls()  # once the restarted server reports its Label Studio running
        tasks = self.ls.tasks(self.session["project_id"]) if landed_files else {}
        for path, document in landed_files.items():
            task = tasks[document["data"]["path"]]
            if label_choices(document) != ls_choices(self.ls.annotations(task["id"])):
                corrupt += 1
                stats.problem(number, f"{path} does not hold Label Studio's annotations")
        status, after = self.server.api("GET", f"labeling/sessions/{sid}/pending", timeout=600)
        if status != 200:
            corrupt += 1
            stats.problem(number, f"pending after restart answered {status}: {after}")
        else:
            left = {**{p: "added" for p in after["added"]}, **{p: "modified" for p in after["modified"]},
                    **{p: "deleted" for p in after["deleted"]}}
            if self.head == previous and left != expected:
                lost += len(set(expected.items()) - set(left.items()))
                stats.problem(number, f"pending after an absent commit {left} != {expected}")
            if self.head != previous and left:
                corrupt += 1
                stats.problem(number, f"still pending after the commit landed: {left}")
        status, mounts = self.server.api("GET", "mounts")
        labels_mount = {m["name"]: m for m in mounts["mounts"]}.get(self.session["labels_mount"])
        if labels_mount is None or labels_mount["state"] != "mounted" or labels_mount["base"] != self.head \
                or labels_mount["behind"] != 0:
            corrupt += 1
            stats.problem(number, f"the labels mount after restart: {labels_mount}")
        stale = [p for p in our_fuse_mounts(self.server.mount_dir) if not served(p)]
        if stale:
            corrupt += 1
            stats.problem(number, f"stale FUSE mounts after restart: {stale}")
        if open_commits(self.server.store):
            corrupt += 1
            stats.problem(number, "open commits left in the store after restart")
        stats.corrupt += bool(corrupt)
        stats.lost += lost
        for pid in orphans:  # the new server coped (or not) with it running; now end it
            end_process_group(pid)
        landed_now = self.head != previous
        self.latency = min(10.0, self.latency * 1.3) if not landed_now else max(0.01, self.latency * 0.8)

    def close(self) -> None:
        pids = self._label_ls_pids()
        self.server.stop()
        if self.ls is not None:
            self.ls.close()
        for point in our_fuse_mounts(self.server.mount_dir):
            from jupyterlab_pachls.mount.fusefs import unmount

            unmount(point, lazy=True)
        time.sleep(0.5)
        for pid in pids:  # a clean stop ends the managed Label Studio; a leftover would be a finding
            if alive(pid):
                self.stats.problem(-1, f"Label Studio {pid} outlived a clean stop")
                end_process_group(pid)

    def figures(self) -> str:
        return self.stats.figures() + (f" label_studio_orphaned={self.stats_orphans}" if not self.external else "")


def run_label_trials(workdir: Path, trials: int, *, seed: int = 0, **kwargs) -> LabelTrials:
    runner = LabelTrials(workdir, seed=seed, **kwargs)
    runner.run(trials)
    return runner
