"""Download of a commit as a tar against ``tar`` of the same files in a plain directory.

One commit of N small files (default 100,000 of 2 KiB in 100 directories) in the embedded store, and
the same tree in a plain directory on the same disk. Each round, interleaved (load from other work
hits every side alike), each writing its archive to a file on that disk:

1. ``tar``: ``tar -cf OUT -C DIR .`` of the plain directory (GNU tar);
2. ``api``: the archive in this process (``pfs/archive.py`` over ``LocalBackend.read_tree``, what
   ``Client.get`` with the store opened directly reads);
3. ``rest``: ``GET /pachls/api/repos/{repo}/commits/{commit}/archive`` of a real Jupyter server
   (``tests/serverproc.JupyterServer``), streamed to the file by ``httpx``.

Both sides read warm files (the first, untimed round warms the page cache for all). Figures are
medians over the rounds; each round gives paired ratios (side / tar of that round). The last line is
``export_vs_tar=<float>``: the worse of the api and rest median paired ratios (target <= 1.3).

Usage: python bench/export.py [--files 100000] [--size 2048] [--dirs 100] [--rounds 3] [--no-rest]
       [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _bench import add_json_argument, settle, spread, write_json  # noqa: E402
from serverproc import JupyterServer  # noqa: E402  (the one way tests, stress runs and benchmarks start a server)

from jupyterlab_pachls.pfs import LocalBackend  # noqa: E402
from jupyterlab_pachls.pfs.archive import archive_entries, plan_archive, stream_archive  # noqa: E402


def build(work: Path, files: int, size: int, dirs: int) -> tuple[Path, Path, str]:
    """(plain directory, store directory, commit id) holding the same files."""
    plain, store = work / "plain", work / "store"
    items = []
    for i in range(files):
        path = f"d{i % dirs:04d}/f{i:06d}.bin"
        items.append((path, os.urandom(size)))
    for d in range(dirs):
        (plain / f"d{d:04d}").mkdir(parents=True)
    for path, data in items:
        (plain / path).write_bytes(data)
    backend = LocalBackend(store)
    backend.create_repo("data")
    with backend.commit("data", "master", message="files") as c:
        c.put_files([("/" + path, data) for path, data in items])
    commit = c.finished.id
    backend.close()
    return plain, store, commit


def timed(fn) -> float:
    settle()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-rest", dest="rest", action="store_false", help="leave out the REST side")
    parser.add_argument("--dir", help="work directory (default: a new temporary one)")
    add_json_argument(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pachls-bench-export-", dir=args.dir))
    server = None
    try:
        started = time.perf_counter()
        plain, store, commit = build(work, args.files, args.size, args.dirs)
        print(f"{args.files:,} files of {args.size:,} B in {args.dirs} directories (built in "
              f"{time.perf_counter() - started:.1f} s); {args.rounds} interleaved rounds", flush=True)
        out = work / "out.tar"
        backend = LocalBackend(store)

        def plain_tar() -> None:
            subprocess.run(["tar", "-cf", str(out), "-C", str(plain), "."], check=True)

        def api() -> None:
            archive = plan_archive(backend, "data", commit, "/")
            with open(out, "wb") as target:
                for piece in stream_archive("tar", archive_entries(backend, archive),
                                            archive.commit.finished.timestamp()):
                    target.write(piece)

        sides = {"tar": plain_tar, "api": api}
        if args.rest:
            server = JupyterServer(work / "root", store=store, no_fuse=True).start(timeout=120)
            url = f"{server.url}/pachls/api/repos/data/commits/{commit}/archive"
            http = httpx.Client(headers={"Authorization": f"token {server.token}"}, timeout=600)

            def rest() -> None:
                with http.stream("GET", url, params={"format": "tar"}) as answer, open(out, "wb") as target:
                    answer.raise_for_status()
                    for piece in answer.iter_raw(1 << 20):
                        target.write(piece)

            sides["rest"] = rest
        for fn in sides.values():  # warm-up, untimed: every side reads from the page cache alike
            fn()
        with tarfile.open(out) as check:  # the last warm-up's archive holds every file
            assert sum(1 for m in check if m.isfile()) == args.files
        times: dict[str, list[float]] = {side: [] for side in sides}
        for r in range(args.rounds):
            for side, fn in sides.items():
                times[side].append(timed(fn))
            print(f"round {r + 1}: " + ";  ".join(f"{side} {times[side][-1]:.2f} s" for side in sides), flush=True)
        figures: dict = {"files": args.files, "size": args.size, "dirs": args.dirs, "rounds": args.rounds,
                         "archive_bytes": out.stat().st_size}
        ratios = {}
        for side in sides:
            figures[f"{side}_s"] = spread(times[side])
            if side != "tar":
                paired = spread(t / base for t, base in zip(times[side], times["tar"]))
                figures[f"{side}_vs_tar"] = paired
                ratios[side] = paired["median"]
            median = figures[f"{side}_s"]["median"]
            extra = (f"  / tar: median {figures[f'{side}_vs_tar']['median']:.2f} "
                     f"({figures[f'{side}_vs_tar']['min']:.2f}-{figures[f'{side}_vs_tar']['max']:.2f})"
                     if side != "tar" else "")
            print(f"{side:<5} {median:6.2f} s  {args.files / median:9.0f} files/s{extra}")
        last = f"export_vs_tar={max(ratios.values()):.2f}"
        write_json(args.json, "export", args, figures, last)
        print(last)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
