"""Read speed through a read-only FUSE mount against the same files read straight from disk.

In one run, warm cache (each side is read once to warm up, then direct and mount are timed
alternately ``--repeat`` times; ratios use the best time of each side; each repeat also gives a
paired ratio (mount / direct of that repeat), whose median and spread are printed beside it,
since this machine may be shared with other work):

1. a 1 GiB file read sequentially (1 MiB reads);
2. 10,000 files of 2 KiB, each opened, read and closed;
3. ``scandir`` + ``stat`` of every entry of a 100,000-entry directory.

"Direct" reads the plain files the store was filled from; "mount" reads the same data through a
``MountManager`` read-only FUSE mount of the embedded store. The last line is
``worst_mount_vs_direct_ratio=<float>`` (targets: large <= 1.25, small <= 2.0, listing <= 1.5).

Usage: python bench/mount_read.py [--dir DIR] [--big-mib 1024] [--small 10000] [--entries 100000] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench import add_json_argument, spread, write_json  # noqa: E402
from jupyterlab_pachls.mount import MountManager  # noqa: E402
from jupyterlab_pachls.pfs import LocalBackend  # noqa: E402

CHUNK = 1 << 20


def read_big(path: str) -> int:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while n := os.readv(fd, [view]):
            total += n
    finally:
        os.close(fd)
    return total


def read_small(paths: list[str]) -> int:
    total = 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        total += len(os.read(fd, 65536))
        os.close(fd)
    return total


def list_dir(path: str) -> int:
    count = 0
    with os.scandir(path) as it:
        for entry in it:
            entry.stat()
            count += 1
    return count


def compare(fn, direct_arg, mount_arg, *, repeat: int):
    """Warm both sides, then time them alternately (so load from other work hits both alike).
    Returns (best direct, best mount, paired ratios, result)."""
    result = fn(direct_arg)
    assert fn(mount_arg) == result, "the mount returned different results"
    direct, mount = [], []
    for _ in range(repeat):
        for arg, times in ((direct_arg, direct), (mount_arg, mount)):
            start = time.perf_counter()
            again = fn(arg)
            times.append(time.perf_counter() - start)
            assert again == result, "reads returned different results"
    return min(direct), min(mount), [m / d for d, m in zip(direct, mount)], result


def build(root: Path, big_mib: int, small: int, entries: int) -> tuple[Path, LocalBackend]:
    direct = root / "direct"
    (direct / "small").mkdir(parents=True)
    (direct / "many").mkdir()
    block = os.urandom(CHUNK)
    with open(direct / "big.bin", "wb") as out:
        for i in range(big_mib):
            out.write(i.to_bytes(8, "little") + block[8:])
    for i in range(small):
        (direct / "small" / f"{i:05d}.json").write_bytes(os.urandom(1024).hex().encode())
    for i in range(entries):
        (direct / "many" / f"{i:06d}").write_bytes(b"%d" % i)
    backend = LocalBackend(root / "store")
    backend.create_repo("bench")
    with backend.commit("bench", "master", message="bench data") as c:
        c.put_file("/big.bin", direct / "big.bin")
        c.put_files([(f"/small/{i:05d}.json", direct / "small" / f"{i:05d}.json") for i in range(small)])
        c.put_files([(f"/many/{i:06d}", b"%d" % i) for i in range(entries)])
    return direct, backend


def main() -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="pachls-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    manager = None
    try:
        t0 = time.perf_counter()
        direct, backend = build(root, args.big_mib, args.small, args.entries)
        print(f"setup: {args.big_mib} MiB file, {args.small} small files, {args.entries} entries "
              f"in {time.perf_counter() - t0:.1f} s")
        manager = MountManager(backend, root / "pfs", root / "state", fuse=True)
        status = manager.mount("bench", mode="ro")
        mount = Path(status.mountpoint)
        print(f"mounted {status.name} ({status.presentation}, {status.mode}) at {mount}")
        ratios, figures = {}, {}

        def report(label, d, m, paired, unit, target):
            ratios[label] = m / d
            p = spread(paired)
            figures[label] = {"direct_best_s": d, "mount_best_s": m, "ratio_best": m / d,
                              "ratio_paired": p, "target": target}
            print(f"{label:<8} direct {unit(d)}  mount {unit(m)}  ratio {m / d:.3f} (best of {args.repeat}; "
                  f"paired ratio median {p['median']:.3f}, spread {p['min']:.3f}..{p['max']:.3f})  target <= {target}")

        d, m, paired, n = compare(read_big, str(direct / "big.bin"), str(mount / "big.bin"), repeat=args.repeat)
        assert n == args.big_mib * CHUNK
        report("large", d, m, paired, lambda t: f"{n / t / 1e9:6.2f} GB/s", 1.25)

        names = sorted(os.listdir(direct / "small"))
        d, m, paired, n = compare(read_small, [str(direct / "small" / x) for x in names],
                                  [str(mount / "small" / x) for x in names], repeat=args.repeat)
        report("small", d, m, paired, lambda t: f"{len(names) / t:8.0f} files/s", 2.0)

        d, m, paired, n = compare(list_dir, str(direct / "many"), str(mount / "many"), repeat=args.repeat)
        assert n == args.entries
        report("listing", d, m, paired, lambda t: f"{t * 1000:7.1f} ms", 1.5)
        worst = max(ratios.values())
        last = f"worst_mount_vs_direct_ratio={worst:.3f}"
        print(last)
        figures["worst_mount_vs_direct_ratio"] = worst
        figures["presentation"] = status.presentation
        write_json(args.json, "mount_read", args, figures, last)
        return worst
    finally:
        if manager is not None:
            manager.close()
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
