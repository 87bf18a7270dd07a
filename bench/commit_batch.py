"""Commit N small files as one commit vs writing the same files to a plain directory.

    python bench/commit_batch.py [--files 10000] [--size 2048]

The floor is writing the files with open/write/close into one directory tree, as
a labeling tool would. The last line is ``commit_vs_write_ratio=<float>`` (target <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = make_files(args.files, args.size)
    writes, commits = [], []
    for _ in range(args.rounds):
        work = Path(tempfile.mkdtemp(prefix="pachls-bench-"))
        try:
            writes.append(write_plain(work / "plain", files))
            commits.append(commit_local(work / "store", files))
        finally:
            shutil.rmtree(work)
    write_s, commit_s = statistics.median(writes), statistics.median(commits)
    print(f"files={args.files} size={args.size} rounds={args.rounds}")
    print(f"plain_write_s={write_s:.3f} ({args.files / write_s:,.0f} files/s)")
    print(f"local_commit_s={commit_s:.3f} ({args.files / commit_s:,.0f} files/s)")
    print(f"commit_vs_write_ratio={commit_s / write_s:.3f}")


if __name__ == "__main__":
    main()
