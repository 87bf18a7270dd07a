"""Crash trials, long variant: SIGKILL the Jupyter server at random points during commits.

    .venv/bin/python stress/crash_trials.py --trials 100 [--mode fuse|nofuse|labels|all] [--seed N]

Each mode runs its trials against one real ``jupyter server`` subprocess (restarted after each kill)
over its own store and mount directory under a temporary directory (``--keep`` keeps it). What a
trial checks is described in ``tests/crashtrial.py``. Prints per mode and overall
``crash_trials=N corrupt=0 lost=0``; exits 1 if anything was corrupt or lost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from crashtrial import TrialStats, run_mount_trials  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--mode", choices=["fuse", "nofuse", "labels", "all"], default="all")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--ls-template", type=Path,
                        default=os.environ.get("PACHLS_TEST_LS_DIR") or Path(tempfile.gettempdir()) /
                        f"pytest-of-{os.environ.get('USER', 'root')}" / "pachls-ls-data",
                        help="labels mode: a migrated Label Studio data dir to copy (saves its first-start "
                             "migration; default: the test suite's)")
    args = parser.parse_args()
    modes = ["fuse", "nofuse", "labels"] if args.mode == "all" else [args.mode]
    work = Path(tempfile.mkdtemp(prefix="pachls-crash-"))
    print(f"seed={args.seed} work={work}")
    results: list[TrialStats] = []
    try:
        for mode in modes:
            started = time.monotonic()
            if mode == "labels":
                from crashlabels import run_label_trials

                runner = run_label_trials(work / mode, args.trials, seed=args.seed, ls_template=args.ls_template)
                stats = runner.stats
                print(runner.figures())
            else:
                if mode == "fuse":
                    from jupyterlab_pachls.mount.fusefs import fuse_available

                    ok, why = fuse_available()
                    if not ok:
                        print(f"{mode}: skipped, FUSE is not usable here: {why}")
                        continue
                stats = run_mount_trials(work / mode, mode, args.trials, seed=args.seed)
            results.append(stats)
            for problem in stats.problems[:50]:
                print("  " + problem)
            print(f"{stats.figures()} ({time.monotonic() - started:.0f} s)")
            print(f"{mode}: {stats.summary()}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = TrialStats("all", trials=sum(s.trials for s in results), corrupt=sum(s.corrupt for s in results),
                       lost=sum(s.lost for s in results))
    print(total.summary())
    return 1 if total.corrupt or total.lost else 0


if __name__ == "__main__":
    sys.exit(main())
