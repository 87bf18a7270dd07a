"""The Pachyderm API stopped at a random call of a mount commit, many times.

Each trial: a read-write mount on the Pachyderm backend (PachydermBackend -> the package's
Pachyderm-API gRPC server over an embedded store) stages an add, a change and a delete; the server is
stopped at a random call (before or after handling it) while the mount commits; the server is started
again on the same port. Then the branch must hold the old head or the whole new commit (never part of
one), the stage must still hold every change not landed, the cluster must hold no staging branch once a
commit ran, and the retry must land.

    .venv/bin/python stress/faults.py [--trials N] [--seed S]

Ends with ``fault_trials=N half_commits=0 lost=0 leftovers=0 failed_retries=0``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
os.environ["PACHLS_NO_FUSE"] = "1"

from stoppable_cluster import Cluster, StopAt, eventually  # noqa: E402

from jupyterlab_pachls.mount import MountManager  # noqa: E402
from jupyterlab_pachls.pfs import open_backend  # noqa: E402
from jupyterlab_pachls.pfs.errors import PfsError  # noqa: E402

CALLS = ["InspectRepo", "InspectBranch", "InspectCommit", "StartCommit", "ModifyFile", "FinishCommit",
         "DiffFile", "InspectFile", "DeleteBranch", "DropCommitSet"]


def trial(root: Path, rng: random.Random) -> dict:
    cluster = Cluster(root / "served")
    backend = open_backend({"kind": "pachyderm", "pachd_address": cluster.address, "connect_timeout": 2.0})
    mounts = MountManager(backend, root / "pfs", root / "state", fuse=False)
    try:
        backend.create_repo("r")
        with backend.commit("r", "master", message="base") as c:
            c.put_files([("/keep.txt", b"keep"), ("/old.txt", b"old"), ("/gone.txt", b"gone")])
        base = c.finished.id
        mounts.mount("r", "master", mode="rw", name="w")
        mp = Path(mounts.status("w").mountpoint)
        (mp / "new.txt").write_bytes(b"new")
        (mp / "old.txt").write_bytes(b"changed")
        (mp / "gone.txt").unlink()
        want = {"/keep.txt": b"keep", "/old.txt": b"changed", "/new.txt": b"new"}
        method, n, after = rng.choice(CALLS), rng.randint(1, 3), rng.random() < 0.5
        cluster.stop()
        stop = StopAt(method, n, after=after)
        cluster.start(stop)
        outcome = "landed"
        try:
            mounts.commit("w", message="cut", author="stress")
        except PfsError as exc:
            outcome = type(exc).__name__
        if not stop.fired.is_set():
            cluster.stop()
        cluster.start()
        head = eventually(lambda: backend.inspect_branch("r", "master")).head
        files = {i.path: backend.get_file("r", head.id, i.path) for i in backend.walk("r", head.id) if not i.is_dir}
        half = not (head.id == base and files == {"/keep.txt": b"keep", "/old.txt": b"old", "/gone.txt": b"gone"}
                    or head.id != base and files == want)
        staged = {ch.path for ch in mounts.changes("w").changes}
        lost = head.id == base and staged != {"/new.txt", "/old.txt", "/gone.txt"}
        failed_retry = False
        if head.id == base:
            try:
                eventually(lambda: mounts.commit("w", message="retry", author="stress"))
            except PfsError:
                failed_retry = True
        stale_stage = head.id != base and outcome != "landed" and bool(staged)
        if stale_stage:  # landed but the mount was told it failed: its stage equals the branch (see README)
            mounts.discard("w")
            mounts.refresh("w")
        (mp / "later.txt").write_bytes(b"later")  # the next commit also cleans what the cut left
        try:
            eventually(lambda: mounts.commit("w", message="later", author="stress"))
        except PfsError:
            failed_retry = True
        want["/later.txt"] = b"later"
        final = {i.path: backend.get_file("r", "master", i.path) for i in backend.walk("r", "master") if not i.is_dir}
        lost = lost or final != want
        leftovers = [b.name for b in cluster.served.list_branches("r") if b.name != "master"]
        return {"point": f"{method}#{n}{'+' if after else ''}", "outcome": outcome, "half": half, "lost": lost,
                "leftovers": leftovers, "failed_retry": failed_retry, "stale_stage": stale_stage}
    finally:
        mounts.close()
        backend.close()
        cluster.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    totals = {"half": 0, "lost": 0, "leftovers": 0, "failed_retries": 0}
    stale = 0
    started = time.monotonic()
    for i in range(args.trials):
        with tempfile.TemporaryDirectory(prefix="pachls-faults-") as tmp:
            r = trial(Path(tmp), rng)
        totals["half"] += r["half"]
        totals["lost"] += r["lost"]
        totals["leftovers"] += bool(r["leftovers"])
        totals["failed_retries"] += r["failed_retry"]
        stale += r["stale_stage"]
        print(f"trial {i + 1}: stopped at {r['point']:<18} -> {r['outcome']:<12} half={int(r['half'])} "
              f"lost={int(r['lost'])} stale_stage={int(r['stale_stage'])} leftovers={r['leftovers'] or '-'} retry_failed={int(r['failed_retry'])}",
              flush=True)
    print(f"seed={args.seed} seconds={time.monotonic() - started:.0f}")
    print(f"fault_trials={args.trials} half_commits={totals['half']} lost={totals['lost']} "
          f"leftovers={totals['leftovers']} failed_retries={totals['failed_retries']} stale_stage={stale}")
    return 0 if not any(totals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
