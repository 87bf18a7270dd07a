"""Commit 10 changed files into a repo of 1,000 files and into a repo of 1,000,000 files.

    python bench/commit_scaling.py [--big 1000000] [--rounds 15] [--json PATH]

The big repo is built with one ``put_files`` commit (contents repeat every 1,000 files, so
the blob store holds 1,000 blobs and the build measures metadata, not file creation).
Small and big commits are interleaved in 3 blocks, so machine noise hits both alike; each
block gives one ratio (printed as the spread). The last line is
``big_vs_small_commit_ratio=<float>``, the ratio of the medians (target <= 1.3).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _bench import add_json_argument, spread, write_json

from jupyterlab_pachls.pfs import LocalBackend


def layout(n: int):
    """n files, 1,000 per directory."""
    return ((f"/d{i // 1000:04d}/{i:07d}.txt", f"content {i % 1000}".encode()) for i in range(n))


def build(backend: LocalBackend, repo: str, n: int) -> float:
    backend.create_repo(repo)
    start = time.perf_counter()
    with backend.commit(repo, "master", message=f"{n} files") as c:
        c.put_files(layout(n))
    assert c.finished.n_files == n
    return time.perf_counter() - start


def small_commits(backend: LocalBackend, repo: str, n: int, rounds: int) -> list[float]:
    rng = random.Random(7)
    times = []
    for r in range(rounds):
        picks = rng.sample(range(n), 10)
        start = time.perf_counter()
        with backend.commit(repo, "master", message=f"round {r}") as c:
            c.put_files([(f"/d{i // 1000:04d}/{i:07d}.txt", f"changed {r} {i}".encode()) for i in picks])
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    add_json_argument(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pachls-bench-"))
    try:
        backend = LocalBackend(work / "store")
        small_build = build(backend, "small", args.small)
        big_build = build(backend, "big", args.big)
        rss_after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # interleave so machine noise hits both sides alike
        small, big, block_ratios = [], [], []
        per_block = max(1, args.rounds // 3)
        for _ in range(3):
            s = small_commits(backend, "small", args.small, per_block)
            b = small_commits(backend, "big", args.big, per_block)
            small += s
            big += b
            block_ratios.append(statistics.median(b) / statistics.median(s))
        assert backend.fsck().ok
        backend.close()
    finally:
        shutil.rmtree(work)
    small_ms, big_ms = statistics.median(small) * 1000, statistics.median(big) * 1000
    print(f"build small={args.small} files: {small_build:.2f} s; big={args.big} files: {big_build:.1f} s "
          f"({args.big / big_build:,.0f} files/s)")
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} "
          f"(after build {rss_after_build:.0f})")
    print(f"commit_10_files_small_ms p50={small_ms:.2f} max={max(small) * 1000:.2f}")
    print(f"commit_10_files_big_ms   p50={big_ms:.2f} max={max(big) * 1000:.2f}")
    ratios = spread(block_ratios)
    print(f"ratio per block: spread {ratios['min']:.3f}..{ratios['max']:.3f}")
    last = f"big_vs_small_commit_ratio={big_ms / small_ms:.3f}"
    print(last)
    write_json(args.json, "commit_scaling", args, {
        "small_build_s": small_build, "big_build_s": big_build, "big_build_files_per_s": args.big / big_build,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "commit_small_p50_ms": small_ms, "commit_big_p50_ms": big_ms,
        "commit_small_max_ms": max(small) * 1000, "commit_big_max_ms": max(big) * 1000,
        "big_vs_small_commit_ratio": big_ms / small_ms, "big_vs_small_commit_ratio_spread": ratios,
    }, last)


if __name__ == "__main__":
    main()
