"""Where small contents are cheaper in the embedded store's database than as blob files: the measurement
behind ``INLINE_MAX`` in ``jupyterlab_pachls/pfs/local.py``.

    python bench/inline_blobs.py [--sizes 512,1024,...] [--bytes 16777216] [--rounds 3] [--json PATH]

For each content size, the same files (distinct contents) are committed with ``put_files`` into a
store keeping every content as a blob file (``inline_max=0``) and into one keeping every content in
its database, then read back whole through ``read_file`` (the API's read) and through ``open_blob``
+ ``pread`` (a mount's read). Rounds are interleaved; medians in microseconds per file. The
threshold is the largest size up to which a file's life here (one commit, one read of each kind)
costs no more with the database than with files. The last line is ``inline_threshold=<bytes>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _bench import add_json_argument, write_json

from jupyterlab_pachls.pfs import LocalBackend

SIZES = [512, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10]
LAYOUTS = {"files": 0, "database": 1 << 30}


def one_round(work: Path, layout: str, size: int, count: int) -> tuple[float, float, float]:
    """Seconds per file to commit, to read through read_file, to read through open_blob."""
    store = LocalBackend(work / f"{layout}-{size}", inline_max=LAYOUTS[layout])
    try:
        store.create_repo("r")
        files = [(f"/d{i % 10}/{i}", os.urandom(16) + b"x" * (size - 16)) for i in range(count)]
        started = time.perf_counter()
        with store.commit("r", "master") as c:
            c.put_files(files)
        write = (time.perf_counter() - started) / count
        started = time.perf_counter()
        for path, _ in files:
            for _chunk in store.read_file("r", "master", path):
                pass
        read = (time.perf_counter() - started) / count
        hashes = [store.inspect_file("r", "master", path).hash for path, _ in files]
        started = time.perf_counter()
        for blob in hashes:
            fd = store.open_blob(blob)
            try:
                os.pread(fd, size, 0)
            finally:
                os.close(fd)
        opened = (time.perf_counter() - started) / count
        return write, read, opened
    finally:
        store.close()
        shutil.rmtree(work / f"{layout}-{size}", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--bytes", type=int, default=16 << 20, help="bytes committed per size and layout")
    parser.add_argument("--rounds", type=int, default=3)
    add_json_argument(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="pachls-bench-inline-"))
    results: dict[int, dict[str, list[tuple[float, float, float]]]] = {s: {k: [] for k in LAYOUTS} for s in sizes}
    try:
        for _ in range(args.rounds):
            for size in sizes:
                count = max(50, min(2000, args.bytes // size))
                for layout in LAYOUTS:
                    results[size][layout].append(one_round(work, layout, size, count))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'size':>8} | {'commit us/file':>22} | {'read_file us/file':>22} | {'open_blob us/file':>22} | "
          f"{'all three':>22}")
    print(f"{'':>8} |" + f" {'files':>10} {'database':>11} |" * 4)
    threshold = 0
    figures = {}
    still_cheaper = True
    for size in sizes:
        medians = {layout: [statistics.median(r[i] for r in results[size][layout]) * 1e6 for i in range(3)]
                   for layout in LAYOUTS}
        figures[size] = medians
        files, database = medians["files"], medians["database"]
        print(f"{size:>8} | {files[0]:>10.1f} {database[0]:>11.1f} | {files[1]:>10.1f} {database[1]:>11.1f} | "
              f"{files[2]:>10.1f} {database[2]:>11.1f} | {sum(files):>10.1f} {sum(database):>11.1f}")
        still_cheaper = still_cheaper and sum(database) <= sum(files)
        if still_cheaper:
            threshold = size
    last = f"inline_threshold={threshold}"
    print(last)
    write_json(args.json, "inline_blobs", args, {"figures_us_per_file": figures, "inline_threshold": threshold}, last)


if __name__ == "__main__":
    main()
