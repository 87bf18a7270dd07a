"""Read speed through a read-only FUSE mount against the same files read straight from disk.

In one run, warm cache (every measurement is done once to warm up, then repeated; the median
is reported):

1. a 1 GiB file read sequentially (1 MiB reads);
2. 10,000 files of 2 KiB, each opened, read and closed;
3. ``scandir`` + ``stat`` of every entry of a 100,000-entry directory.

"Direct" reads the plain files the store was filled from; "mount" reads the same data through a
``MountManager`` read-only FUSE mount of the embedded store. The last line is
``worst_mount_vs_direct_ratio=<float>`` (targets: large <= 1.25, small <= 2.0, listing <= 1.5).

Usage: python bench/mount_read.py [--dir DIR] [--big-mib 1024] [--small 10000] [--entries 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def timed(fn, *args, repeat: int) -> tuple[float, object]:
    result = fn(*args)  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        again = fn(*args)
        times.append(time.perf_counter() - start)
        assert again == result, "reads returned different results"
    return statistics.median(times), result


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
        ratios = {}

        d, n = timed(read_big, str(direct / "big.bin"), repeat=args.repeat)
        m, n2 = timed(read_big, str(mount / "big.bin"), repeat=args.repeat)
        assert n == n2 == args.big_mib * CHUNK
        ratios["large"] = m / d
        print(f"large file   direct {n / d / 1e9:6.2f} GB/s  mount {n / m / 1e9:6.2f} GB/s  "
              f"ratio {m / d:.3f}  (target <= 1.25)")

        names = sorted(os.listdir(direct / "small"))
        d, n = timed(read_small, [str(direct / "small" / x) for x in names], repeat=args.repeat)
        m, n2 = timed(read_small, [str(mount / "small" / x) for x in names], repeat=args.repeat)
        assert n == n2
        ratios["small"] = m / d
        print(f"small files  direct {len(names) / d:9.0f} files/s  mount {len(names) / m:9.0f} files/s  "
              f"ratio {m / d:.3f}  (target <= 2.0)")

        d, n = timed(list_dir, str(direct / "many"), repeat=args.repeat)
        m, n2 = timed(list_dir, str(mount / "many"), repeat=args.repeat)
        assert n == n2 == args.entries
        ratios["listing"] = m / d
        print(f"listing      direct {d * 1000:8.1f} ms  mount {m * 1000:8.1f} ms  "
              f"({args.entries} entries, scandir+stat)  ratio {m / d:.3f}  (target <= 1.5)")
        worst = max(ratios.values())
        print(f"worst_mount_vs_direct_ratio={worst:.3f}")
        return worst
    finally:
        if manager is not None:
            manager.close()
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
