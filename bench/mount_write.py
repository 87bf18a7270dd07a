"""Writes through a read-write mount: copy a tree of small files into it and commit, against
``cp -r`` of the same tree into a plain directory.

Each round, interleaved (so load from other work hits every side alike):

1. ``plain``: ``cp -r SRC/. DIR`` into an empty plain directory on the same disk;
2. ``fuse``: the same ``cp -r`` into a fresh read-write FUSE mount of a new, empty repo of the
   embedded store, then ``MountManager.commit`` of everything (one commit);
3. ``nofuse``: the same into a read-write mount presented without FUSE, then the commit.

After a FUSE commit that landed everything staged, the stage's copies are removed in the
background; the next step waits for that removal, outside the commit's time.

The dirty pages of each step are flushed (``sync``) before the next one starts, outside the
timings. Beside wall times, the CPU seconds (user + system) of ``cp`` and of this process (which
runs the FUSE daemon and the commit) are given: on a shared machine they move less than wall
time. Figures are medians over the rounds; each round also gives a paired ratio
(copy + commit of the mount / ``cp -r`` of that round), whose median and spread are printed.
With ``--count-ops`` the FUSE requests reaching the mount daemon during the copy are counted per
operation (a separate, untimed copy). The last line is ``mount_write_vs_cp=<float>``: the worse
of the two presentations' median paired ratios (target <= 1.3, copy and commit together); the
best round of each side against the best ``cp -r`` and the CPU ratio are printed beside it.

Usage: python bench/mount_write.py [--files 10000] [--size 2048] [--dirs 100] [--rounds 3]
       [--count-ops] [--dir DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench import add_json_argument, settle, spread, write_json  # noqa: E402
from jupyterlab_pachls.mount import MountManager  # noqa: E402
from jupyterlab_pachls.mount import fusefs  # noqa: E402
from jupyterlab_pachls.pfs import LocalBackend  # noqa: E402

SIDES = ("plain", "fuse", "nofuse")


def build_source(src: Path, files: int, size: int, dirs: int) -> None:
    """``files`` files of ``size`` random bytes spread over ``dirs`` directories."""
    for d in range(dirs):
        (src / f"d{d:04d}").mkdir(parents=True)
    for i in range(files):
        (src / f"d{i % dirs:04d}" / f"f{i:06d}.bin").write_bytes(os.urandom(size))


def cpu_seconds() -> float:
    """User + system CPU time of this process (the FUSE daemon's thread included) and its waited-for
    children (``cp``): less sensitive than wall time to other work on a shared machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def copy_tree(src: Path, dst: Path, cpu: list[float]) -> float:
    settle()
    start, start_cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(["cp", "-r", f"{src}/.", str(dst)], check=True)
    cpu.append(cpu_seconds() - start_cpu)
    return time.perf_counter() - start


class OpCounter:
    """Counts the FUSE requests the mount daemon answers, per operation, while active."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.active = False
        self._original = fusefs.mfusepy.FUSE._wrapper
        counter = self

        def counting(fuse, func, *args, **kwargs):
            if counter.active:
                counter.counts[func.__name__] += 1
            return counter._original(fuse, func, *args, **kwargs)

        fusefs.mfusepy.FUSE._wrapper = counting

    def close(self) -> None:
        fusefs.mfusepy.FUSE._wrapper = self._original


def mount_round(manager: MountManager, backend: LocalBackend, src: Path, repo: str, files: int, cpu: list[float],
                counter: OpCounter | None = None) -> tuple[float, float]:
    """Copy ``src`` into a new read-write mount of a new repo and commit it: (copy s, commit s); the CPU
    seconds of both together are appended to ``cpu``."""
    backend.create_repo(repo)
    status = manager.mount(repo, mode="rw")
    try:
        if counter is not None:
            counter.active = True
        copy = copy_tree(src, Path(status.mountpoint), cpu)
        if counter is not None:
            counter.active = False
        settle()
        start, start_cpu = time.perf_counter(), cpu_seconds()
        commit = manager.commit(status.name, "bench copy", "bench <bench@example.com>")
        took = time.perf_counter() - start
        # a FUSE stage whose files all landed is removed in the background: waited for here, outside
        # the commit's time (the user does not wait for it), its CPU counted all the same
        overlay = manager._mounts[status.name].overlay
        if overlay is not None and overlay.removing is not None:
            overlay.removing.join()
        cpu[-1] += cpu_seconds() - start_cpu
        landed = sum(1 for info in backend.walk(repo, commit.id) if not info.is_dir)
        assert landed == files, f"the commit holds {landed} files, not {files}"
        return copy, took
    finally:
        manager.unmount(status.name, discard=True)


def main() -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count-ops", action="store_true", help="count the FUSE requests of one more copy")
    add_json_argument(parser)
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="pachls-bench-", dir=os.environ.get("PACHLS_BENCH_TMP")))
    root.mkdir(parents=True, exist_ok=True)
    managers: list[MountManager] = []
    try:
        src = root / "src"
        build_source(src, args.files, args.size, args.dirs)
        backend = LocalBackend(root / "store")
        fuse = MountManager(backend, root / "pfs-fuse", root / "state-fuse", fuse=True)
        managers.append(fuse)
        nofuse = MountManager(backend, root / "pfs-nofuse", root / "state-nofuse", fuse=False)
        managers.append(nofuse)
        print(f"{args.files:,} files of {args.size:,} B in {args.dirs} directories; "
              f"FUSE library {fusefs.fuse_major()}; {args.rounds} interleaved rounds")
        times: dict[str, dict[str, list[float]]] = {s: {"copy": [], "commit": [], "cpu": []} for s in SIDES}
        paired: dict[str, list[float]] = {"fuse": [], "nofuse": []}
        for r in range(args.rounds):
            plain = root / f"plain{r}"
            plain.mkdir()
            cp = copy_tree(src, plain, times["plain"]["cpu"])
            times["plain"]["copy"].append(cp)
            times["plain"]["commit"].append(0.0)
            line = [f"round {r + 1}: cp -r {cp:6.2f} s"]
            for side, manager in (("fuse", fuse), ("nofuse", nofuse)):
                copy, commit = mount_round(manager, backend, src, f"{side}{r}", args.files, times[side]["cpu"])
                times[side]["copy"].append(copy)
                times[side]["commit"].append(commit)
                paired[side].append((copy + commit) / cp)
                line.append(f"{side} copy {copy:6.2f} s + commit {commit:5.2f} s ({(copy + commit) / cp:4.2f}x)")
            print(";  ".join(line), flush=True)
            shutil.rmtree(plain)
        figures: dict = {"files": args.files, "size": args.size, "dirs": args.dirs, "rounds": args.rounds,
                         "fuse_library": fusefs.fuse_major()}
        for side in SIDES:
            copy, commit = statistics.median(times[side]["copy"]), statistics.median(times[side]["commit"])
            cpu = statistics.median(times[side]["cpu"])
            figures[side] = {"copy_s": copy, "commit_s": commit, "cpu_s": cpu, "copy_runs": times[side]["copy"],
                             "commit_runs": times[side]["commit"], "cpu_runs": times[side]["cpu"]}
            if side in paired:
                figures[side]["vs_cp"] = spread(paired[side])
                p = figures[side]["vs_cp"]
                best = min(a + b for a, b in zip(times[side]["copy"], times[side]["commit"]))
                figures[side]["best_vs_best_cp"] = best / min(times["plain"]["copy"])
                figures[side]["cpu_vs_cp"] = cpu / statistics.median(times["plain"]["cpu"])
                print(f"{side:<7} copy {copy:6.2f} s  commit {commit:5.2f} s  CPU {cpu:5.2f} s  together / cp -r: "
                      f"median {p['median']:.2f} (spread {p['min']:.2f}..{p['max']:.2f}; best / best "
                      f"{figures[side]['best_vs_best_cp']:.2f}; CPU {figures[side]['cpu_vs_cp']:.2f})  "
                      f"{args.files / (copy + commit):8.0f} files/s")
            else:
                print(f"{side:<7} copy {copy:6.2f} s  CPU {cpu:5.2f} s  {args.files / copy:8.0f} files/s")
        if args.count_ops:
            counter = OpCounter()
            try:
                mount_round(fuse, backend, src, "counted", args.files, [], counter)
            finally:
                counter.close()
            total = sum(counter.counts.values())
            figures["fuse_ops"] = dict(counter.counts)
            figures["fuse_ops_per_file"] = total / args.files
            print(f"FUSE requests during one copy: {total:,} ({total / args.files:.2f} per file): "
                  + ", ".join(f"{name} {n:,}" for name, n in counter.counts.most_common()))
        worst = max(figures[side]["vs_cp"]["median"] for side in paired)
        figures["mount_write_vs_cp"] = worst
        last = f"mount_write_vs_cp={worst:.3f}"
        print(last)
        write_json(args.json, "mount_write", args, figures, last)
        return worst
    finally:
        for manager in managers:
            manager.close()
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
