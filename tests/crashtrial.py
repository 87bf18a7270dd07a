"""Crash trials: a real Jupyter server SIGKILLed at random points while a read-write mount commits.

Used by ``tests/test_crash_trials.py`` (a few trials per mode) and ``stress/crash_trials.py`` (100+).

One run (``run_mount_trials``) keeps one store, one mount directory and one read-write mount of
repo ``data`` across N trials. Each trial:

1. the driver writes, changes and deletes files in the mount (through the OS: the FUSE mount, or the
   plain directory without FUSE) and remembers what it staged;
2. it POSTs ``/pachls/api/mounts/data/commit`` while a killer SIGKILLs the server after a random
   delay (from 0 to a bit more than a commit takes: before, during and after the landing);
3. with the server dead, the store must pass ``LocalBackend.fsck()`` and the branch must hold either
   the old head (the commit is absent) or one new commit whose tree is exactly what was staged;
   a commit the server acknowledged (201) must be there;
4. the server is started again (same store, same mount dir): the mount must be listed, up, based on
   the branch head, hold every staged file, and list as pending exactly what did not land; no stale
   FUSE mount may remain and no open commit may be left behind in the store.

``corrupt`` counts trials that broke 3. or 4. (other than losing data); ``lost`` counts staged files
missing or changed after the restart plus acknowledged commits that are absent.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from serverproc import JupyterServer

from jupyterlab_pachls.mount.fusefs import fuse_mounts, unmount
from jupyterlab_pachls.pfs import LocalBackend

REPO, MOUNT = "data", "data"


@dataclass
class TrialStats:
    mode: str
    trials: int = 0
    corrupt: int = 0
    lost: int = 0
    landed: int = 0
    absent: int = 0
    acknowledged: int = 0
    open_commits_left: int = 0
    settled_landed: int = 0  # restarts that found a commit in progress which had landed
    settled_aborted: int = 0  # ... which had not (its open commit aborted)
    commit_seconds: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def problem(self, trial: int, text: str) -> None:
        self.problems.append(f"[{self.mode} trial {trial}] {text}")

    def summary(self) -> str:
        return f"crash_trials={self.trials} corrupt={self.corrupt} lost={self.lost}"

    def figures(self) -> str:
        lat = sorted(self.commit_seconds)
        median = f"{lat[len(lat) // 2] * 1000:.0f} ms" if lat else "n/a"
        return (f"{self.mode}: trials={self.trials} landed={self.landed} absent={self.absent} "
                f"acknowledged={self.acknowledged} settled_landed={self.settled_landed} "
                f"settled_aborted={self.settled_aborted} open_commits_left={self.open_commits_left} "
                f"median_commit={median} corrupt={self.corrupt} lost={self.lost}")


def store_tree(store: LocalBackend, repo: str, ref: str) -> dict[str, bytes]:
    return {info.path: store.get_file(repo, ref, info.path) for info in store.walk(repo, ref) if not info.is_dir}


def disk_tree(root: Path) -> dict[str, bytes]:
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            local = os.path.join(dirpath, name)
            with open(local, "rb") as f:
                found[local[len(str(root)):]] = f.read()
    return found


def expected_changes(committed: dict[str, bytes], work: dict[str, bytes]) -> dict[str, str]:
    changes = {p: "added" for p in work if p not in committed}
    changes.update({p: "modified" for p in work if p in committed and committed[p] != work[p]})
    changes.update({p: "deleted" for p in committed if p not in work})
    return changes


def open_commits(store_dir: Path) -> int:
    db = sqlite3.connect(f"file:{store_dir / 'meta.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM commits WHERE finished IS NULL").fetchone()[0]
    finally:
        db.close()


def our_fuse_mounts(mount_dir: Path) -> list[str]:
    prefix = str(mount_dir) + "/"
    return sorted(p for p, _ in fuse_mounts() if p.startswith(prefix))


def served(point: str) -> bool:
    try:
        os.stat(point)
        return True
    except OSError:
        return False


def note_settled(stats: TrialStats, log_text: str) -> None:
    """Count what a restarted server said about commits it found in progress (mount/journal.py)."""
    stats.settled_landed += log_text.count("landed before the server stopped")
    stats.settled_aborted += log_text.count("did not land; its changes are still pending")


class Trials:
    """The loop of a crash-trial run: ``setup``, ``trial(n)`` for each, ``close``; figures every 10."""

    stats: TrialStats
    server: JupyterServer
    rng: random.Random
    phases: list[str] | None

    def phase(self, number: int) -> str:
        """When trial ``number`` kills the server: the run's phases in turn, else early (10%), late
        (5%: after the answer) or at random during the commit."""
        phase = self.phases[(number - 1) % len(self.phases)] if self.phases else None
        if phase is None:
            draw = self.rng.random()
            phase = "early" if draw < 0.1 else "late" if draw < 0.15 else "random"
        return phase

    def commit_and_kill(self, number: int, route: str, message: str, delay: float | None, *, timeout: float,
                        what: str) -> tuple[dict, bool]:
        """POST the commit ``route`` and kill the server ``delay`` seconds later (None: once it answered).
        Counts the trial, an acknowledged commit (201, with its time) and any other answer (corrupt);
        returns what the request got (status and body, or the error) and whether it was acknowledged."""
        stats = self.stats
        result: dict = {}

        def post() -> None:
            started = time.monotonic()
            try:
                result["status"], result["body"] = self.server.api("POST", route, {"message": message}, timeout=timeout)
                result["seconds"] = time.monotonic() - started
            except OSError as exc:  # the connection died with the server
                result["error"] = exc

        poster = threading.Thread(target=post)
        poster.start()
        if delay is None:  # after the answer: the commit landed, the server dies idle
            poster.join()
        else:
            time.sleep(delay)
        self.server.kill()
        poster.join()
        stats.trials += 1
        acknowledged = result.get("status") == 201
        if acknowledged:
            stats.acknowledged += 1
            stats.commit_seconds.append(result["seconds"])
        elif "status" in result:
            stats.corrupt += 1
            stats.problem(number, f"{what} answered {result['status']}: {result['body']}")
        return result, acknowledged

    def figures(self) -> str:
        return self.stats.figures()

    def run(self, trials: int) -> TrialStats:
        try:
            self.setup()
            for number in range(1, trials + 1):
                self.trial(number)
                if number % 10 == 0:
                    self.log(f"  {self.figures()}")
        finally:
            self.close()
        return self.stats


class MountTrials(Trials):
    """N crash trials of one mode (``fuse`` or ``nofuse``) under ``workdir``."""

    def __init__(self, workdir: Path, mode: str, *, seed: int = 0, phases: list[str] | None = None,
                 log=print) -> None:
        assert mode in ("fuse", "nofuse")
        self.mode = mode
        self.workdir = Path(workdir)
        self.rng = random.Random(seed)
        self.log = log
        self.server = JupyterServer(self.workdir / "root", store=self.workdir / "store", no_fuse=mode == "nofuse",
                                    config={"PachlsConfig.user_name": "Crash Trials",  # commits need an author
                                            "PachlsConfig.user_email": "trials@example.com"})
        self.mountpoint = self.server.mount_dir / MOUNT
        self.stats = TrialStats(mode)
        self.committed: dict[str, bytes] = {}
        self.work: dict[str, bytes] = {}
        self.head: str | None = None
        self.latency = 0.15  # seconds; adapted so that kills fall around the landing
        #: when to kill, cycled: "early" (as the request goes out), "random" (0 to 1.5 x latency),
        #: "late" (after the answer); None: random, with 10 % early and 5 % late
        self.phases = phases
        self.counter = 0

    # -- content -----------------------------------------------------------------------
    def _content(self) -> bytes:
        self.counter += 1
        size = self.rng.choice([0, 10, 100, 3000, 20000]) if self.rng.random() < 0.9 else self.rng.randint(1, 4) << 20
        stamp = f"{self.mode}-{self.counter}-".encode()
        return (stamp * (size // len(stamp) + 1))[:max(size, len(stamp))]

    def _new_path(self) -> str:
        folder = self.rng.choice(["", "/a", "/a/b", "/c", f"/d{self.rng.randint(0, 9)}"])
        return f"{folder}/f{self.counter}-{self.rng.randint(0, 999)}.bin"

    def mutate(self) -> None:
        """Write new files, change some, delete some, through the OS in the mount."""
        rng = self.rng
        for _ in range(rng.randint(1, 8)):
            path = self._new_path()
            self._write(path, self._content())
        existing = sorted(self.work)
        for path in rng.sample(existing, min(len(existing), rng.randint(0, 4))):
            self._write(path, self._content())
        existing = sorted(self.work)
        for path in rng.sample(existing, min(len(existing), rng.randint(0, 3))):
            os.unlink(str(self.mountpoint) + path)
            del self.work[path]

    def _write(self, path: str, data: bytes) -> None:
        local = str(self.mountpoint) + path
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(data)
        self.work[path] = data

    # -- the run -------------------------------------------------------------------------
    def setup(self) -> None:
        self.server.start()
        status, body = self.server.api("POST", "repos", {"name": REPO})
        assert status == 201, body
        status, body = self.server.api("POST", "mounts", {"repo": REPO, "mode": "rw"})
        assert status == 201, body
        for _ in range(10):
            self._write(self._new_path(), self._content())
        status, body = self.server.api("POST", f"mounts/{MOUNT}/commit", {"message": "initial"})
        assert status == 201, body
        self.head = body["commit"]["id"]
        self.committed = dict(self.work)

    def trial(self, number: int) -> None:
        stats = self.stats
        self.mutate()
        status, body = self.server.api("GET", f"mounts/{MOUNT}/changes")
        listed = {c["path"]: c["change"] for c in body["changes"]} if status == 200 else body
        if listed != expected_changes(self.committed, self.work):
            stats.corrupt += 1
            stats.problem(number, f"changes before the commit: {listed}")
        phase = self.phase(number)
        delay = {"early": 0.0, "late": None}.get(phase, self.rng.uniform(0, 1.5 * self.latency))
        result, acknowledged = self.commit_and_kill(number, f"mounts/{MOUNT}/commit", f"trial {number}", delay,
                                                    timeout=120, what="the commit")

        # -- the server is dead: the store alone
        corrupt = lost = 0
        previous_head = self.head
        store = LocalBackend(self.server.store)
        try:
            report = store.fsck(verify_content=True)
            if not report.ok:
                corrupt += 1
                stats.problem(number, f"fsck: {report.problems[:5]}")
            head = store.inspect_branch(REPO, "master").head
            if head.id == self.head:
                stats.absent += 1
                if acknowledged:
                    lost += 1
                    stats.problem(number, f"commit {result['body']['commit']['id']} was acknowledged but is absent")
                if store_tree(store, REPO, head.id) != self.committed:
                    corrupt += 1
                    stats.problem(number, "the branch head changed content without a new commit")
            elif head.parent == self.head:
                stats.landed += 1
                if acknowledged and result["body"]["commit"]["id"] != head.id:
                    corrupt += 1
                    stats.problem(number, f"acknowledged {result['body']['commit']['id']}, landed {head.id}")
                tree = store_tree(store, REPO, head.id)
                if tree != self.work:
                    corrupt += 1
                    wrong = sorted(set(tree) ^ set(self.work) | {p for p in tree if p in self.work and tree[p] != self.work[p]})
                    stats.problem(number, f"the landed commit is not what was staged: {wrong[:10]}")
                self.head = head.id
                self.committed = dict(self.work)
            else:
                corrupt += 1
                stats.problem(number, f"the branch moved to {head.id} whose parent is {head.parent}, not {self.head}")
                self.head = head.id
                self.committed = store_tree(store, REPO, head.id)
        finally:
            store.close()

        # -- restart: the mount comes back with what was staged
        self.server.start()
        note_settled(stats, self.server.log_text())
        stale = [p for p in our_fuse_mounts(self.server.mount_dir) if not served(p)]
        expected_points = [str(self.mountpoint)] if self.mode == "fuse" else []
        if stale or our_fuse_mounts(self.server.mount_dir) != expected_points:
            corrupt += 1
            stats.problem(number, f"FUSE mounts after restart: {our_fuse_mounts(self.server.mount_dir)}, stale {stale}")
        status, body = self.server.api("GET", "mounts")
        mounts = {m["name"]: m for m in body.get("mounts", [])} if status == 200 else {}
        mount = mounts.get(MOUNT)
        presentation = "fuse" if self.mode == "fuse" else "no-fuse"
        if mount is None or mount["state"] != "mounted" or mount["presentation"] != presentation \
                or mount["base"] != self.head or mount["behind"] != 0:
            corrupt += 1
            stats.problem(number, f"the mount after restart: {mount}")
        on_disk = disk_tree(self.mountpoint)
        missing = [p for p in self.work if on_disk.get(p) != self.work[p]]
        extra = [p for p in on_disk if p not in self.work]
        if missing:
            lost += len(missing)
            stats.problem(number, f"staged files missing or changed after restart: {missing[:10]}")
        if extra:
            corrupt += 1
            stats.problem(number, f"files that were deleted came back: {extra[:10]}")
        status, body = self.server.api("GET", f"mounts/{MOUNT}/changes")
        listed = {c["path"]: c["change"] for c in body["changes"]} if status == 200 else body
        if listed != expected_changes(self.committed, self.work):
            corrupt += 1
            stats.problem(number, f"pending after restart {listed} != {expected_changes(self.committed, self.work)}")
        left = open_commits(self.server.store)
        if left:
            stats.open_commits_left += left
            corrupt += 1
            stats.problem(number, f"{left} open commits left in the store after restart")
        stats.corrupt += bool(corrupt)
        stats.lost += lost
        # Aim the next kill at the landing: later after a commit that did not land, earlier after one that did.
        landed_now = self.head != previous_head
        self.latency = min(5.0, self.latency * 1.3) if not landed_now else max(0.005, self.latency * 0.8)

    def close(self) -> None:
        self.server.stop()
        for point in our_fuse_mounts(self.server.mount_dir):
            unmount(point, lazy=True)
            self.stats.problem(-1, f"FUSE mount {point} left after a clean stop")
            self.stats.corrupt += 1


def run_mount_trials(workdir: Path, mode: str, trials: int, *, seed: int = 0, phases: list[str] | None = None,
                     log=print) -> TrialStats:
    return MountTrials(workdir, mode, seed=seed, phases=phases, log=log).run(trials)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
