"""Commit N small files as one commit vs writing the same files to a plain directory.

    python bench/commit_batch.py [--files 10000] [--size 2048] [--rounds 5] [--json PATH]

The floor is writing the files with open/write/close into one directory tree, as
a labeling tool would. The disk of a shared machine swings several-fold between runs, so
floor and commit are measured in rounds, interleaved (A/B, then B/A, ...), each in a fresh
directory after ``sync``; every round gives one ratio. Printed: the median of each side,
the median ratio and its spread (min..max over the rounds). The last line is
``commit_vs_write_ratio=<float>``, the median of the per-round ratios (target <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _bench import add_json_argument, settle, spread, write_json

from jupyterlab_pachls.pfs import LocalBackend


def make_files(n: int, size: int) -> list[tuple[str, bytes]]:
    return [(f"/labels/{i % 100:02d}/{i:06d}.json", os.urandom(size // 2).hex().encode()[:size]) for i in range(n)]


def write_plain(root: Path, files) -> float:
    start = time.perf_counter()
    made = set()
    for path, data in files:
        target = root / path[1:]
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        with open(target, "wb") as out:
            out.write(data)
    return time.perf_counter() - start


def commit_local(root: Path, files) -> float:
    backend = LocalBackend(root)
    backend.create_repo("labels")
    settle()
    start = time.perf_counter()
    with backend.commit("labels", "master", message="batch") as c:
        c.put_files(files)
    elapsed = time.perf_counter() - start
    assert c.finished.n_files == len(files)
    backend.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    files = make_files(args.files, args.size)
    writes, commits, ratios = [], [], []
    for r in range(args.rounds):
        work = Path(tempfile.mkdtemp(prefix="pachls-bench-"))
        try:
            settle()
            if r % 2 == 0:
                w = write_plain(work / "plain", files)
                c = commit_local(work / "store", files)
            else:
                c = commit_local(work / "store", files)
                settle()
                w = write_plain(work / "plain", files)
        finally:
            shutil.rmtree(work)
        writes.append(w)
        commits.append(c)
        ratios.append(c / w)
        print(f"round {r + 1}: plain_write_s={w:.3f} local_commit_s={c:.3f} ratio={c / w:.3f}", flush=True)
    write_s, commit_s = statistics.median(writes), statistics.median(commits)
    ratio = spread(ratios)
    print(f"files={args.files} size={args.size} rounds={args.rounds} (interleaved)")
    print(f"plain_write_s={write_s:.3f} ({args.files / write_s:,.0f} files/s; rounds {min(writes):.3f}..{max(writes):.3f})")
    print(f"local_commit_s={commit_s:.3f} ({args.files / commit_s:,.0f} files/s; rounds {min(commits):.3f}..{max(commits):.3f})")
    print(f"ratio per round: median {ratio['median']:.3f}, spread {ratio['min']:.3f}..{ratio['max']:.3f}")
    last = f"commit_vs_write_ratio={ratio['median']:.3f}"
    print(last)
    write_json(args.json, "commit_batch", args, {
        "plain_write_s": write_s, "local_commit_s": commit_s,
        "plain_write_rounds_s": writes, "local_commit_rounds_s": commits,
        "commit_vs_write_ratio": ratio["median"], "commit_vs_write_ratio_spread": ratio,
    }, last)


if __name__ == "__main__":
    main()
