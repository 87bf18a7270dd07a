"""Memory of one Jupyter server over a long run of panels polling while commits land.

    python bench/soak.py [--minutes 30] [--clients 20] [--repos 100] [--branches 3] [--writers 2]
                         [--kernel-writers 1] [--interval 1.0] [--commit-pause 0.5] [--fuse] [--quick]
                         [--breakdown] [--server-env NAME=VALUE ...]

The same load as ``bench/panel_polling.py`` (its panel clients and writers, unchanged), held for
``--minutes``: ``--clients`` panels refresh every ``--interval`` seconds (``GET /panel``, as the panel does), ``--writers`` commit
through read-write mounts and the REST API, ``--kernel-writers`` commit straight to the store
from other processes, so every cache of the server (listing fragments, commit JSON, the store's
commit cache and chains, mount state) keeps meeting new commits. The server's resident memory
(``VmRSS`` of the process) is sampled every ``--sample`` seconds and printed as a curve.

``--breakdown`` also prints, per sample, where that memory is, as seen from inside the server
(``bench/soak_probe``): glibc malloc's bytes in use and free-but-kept and its arenas, SQLite's own
allocations, Python's allocated blocks, threads, SQLite connections and the store's commit cache.
``--server-env`` runs the server with more environment (``MALLOC_ARENA_MAX=8`` to compare).

"Flat" means: after a warm-up (the first quarter of the run), memory stops growing with the
number of commits. The last line is ``rss_growth_after_warmup_mb=<float> rss_warm_mb=<float>
rss_end_mb=<float> commits=<int>``: growth from the end of the warm-up to the last sample taken
while the load runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import add_json_argument, pct, write_json
from api_listing import show_server_log
from panel_polling import KERNEL_WRITER, Commits, Figures, Http, build_store, cpu_seconds, panel_client, writer
from serverproc import REPO_ROOT, JupyterServer  # on the path through api_listing

PROBE_DIR = Path(__file__).resolve().parent / "soak_probe"


def rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def sample_rss(pid: int, every: float, stop: asyncio.Event, curve: list[tuple[float, float, int]],
                     commits: Commits, start: float) -> None:
    while not stop.is_set():
        curve.append((time.perf_counter() - start, rss_mb(pid), commits.n))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass
    # no sample once the load stops: the memory its requests held is freed then, and an end taken
    # after it would hide growth (a 30-minute run: 127.5 MiB under load, 125.2 MiB just after)


def read_breakdown(path: Path, start: float) -> list[dict]:
    """The probe's samples, ``t`` made relative to the start of the load."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["t"] -= start
    return rows


def print_breakdown(rows: list[dict]) -> None:
    mib = 1 << 20
    print("where the memory is (MiB; from inside the server):")
    print("     t(s)     RSS   anon   file  malloc used  malloc free  arenas  SQLite (pages stmts)  py blocks  threads"
          "  conns  commit cache")
    for r in rows:
        print(f"  {r['t']:7.0f}  {r['VmRSS'] / 1024:6.1f} {r['RssAnon'] / 1024:6.1f} {r['RssFile'] / 1024:6.1f}"
              f"  {r['malloc_in_use'] / mib:11.1f}  {r['malloc_free'] / mib:11.1f}  {r['arenas']:6d}  {r['sqlite'] / mib:6.1f}"
              f" ({r.get('sqlite_cache', 0) / mib:5.1f} {r.get('sqlite_statements', 0) / mib:5.1f})"
              f"  {r['py_blocks']:9d}  {r['Threads']:7d}  {r['connections']:5d}  {'/'.join(map(str, r['commit_cache']))}")


async def drive(server, args, figures: Figures, commits: Commits, curve: list) -> float:
    http = Http(server.port, server.token)
    stop = asyncio.Event()
    rng = random.Random(7)
    for w in range(args.writers):
        status, _, body = await http.request("POST", "/pachls/api/mounts",
                                             {"repo": f"work{w}", "mode": "rw", "name": f"work{w}"})
        if status != 201:
            raise RuntimeError(f"mount work{w}: {status} {body[:300]!r}")
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(writer(http, w, commits, stop, args.commit_pause, args.mount_dir, False))
             for w in range(args.writers)]
    tasks += [asyncio.ensure_future(panel_client(http, figures, stop, args.interval, args.repos,
                                                 rng.uniform(0, args.interval))) for _ in range(args.clients)]
    sampler = asyncio.ensure_future(sample_rss(server.pid, args.sample, stop, curve, commits, start))
    await asyncio.wait(tasks, timeout=args.minutes * 60, return_when=asyncio.FIRST_EXCEPTION)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await sampler
    wall = time.perf_counter() - start
    http.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise RuntimeError(f"{len(errors)} clients or writers failed; first: {errors[0]!r}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--branches", type=int, default=3)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--kernel-writers", type=int, default=1)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between one panel's refreshes")
    parser.add_argument("--commit-pause", type=float, default=0.5, help="seconds a writer waits between commits")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--fuse", action="store_true", help="FUSE mounts (default: no-FUSE)")
    parser.add_argument("--quick", action="store_true", help="a 1-minute run, samples every 5 s")
    parser.add_argument("--breakdown", action="store_true",
                        help="also print where the server's memory is (malloc, SQLite, Python, threads) per sample")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="more environment for the server (repeatable)")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.sample = min(args.minutes, 1.0), min(args.sample, 5.0)

    work = Path(tempfile.mkdtemp(prefix="pachls-soak-"))
    store = work / "store"
    server = None
    figures = Figures("one")
    commits = Commits()
    kernel_commits = 0
    curve: list[tuple[float, float, int]] = []
    probe_file = work / "probe.jsonl"
    breakdown: list[dict] = []
    server_env = dict(item.split("=", 1) for item in args.server_env)
    env = dict(server_env)
    if args.breakdown:
        env.update({"PYTHONPATH": os.pathsep.join([str(PROBE_DIR), str(REPO_ROOT)]),
                    "SOAK_PROBE_FILE": str(probe_file), "SOAK_PROBE_EVERY": str(args.sample)})
    try:
        build_store(store, args.repos, args.branches, args.writers, args.kernel_writers)
        server = JupyterServer(work, store=store, no_fuse=not args.fuse, env=env).start(timeout=120)
        args.mount_dir = work / "pfs"
        rss_at_start = rss_mb(server.pid)
        kernels = [subprocess.Popen([sys.executable, "-c", KERNEL_WRITER, str(store), f"kernel{k}",
                                     str(args.minutes * 60), str(args.commit_pause)], stdout=subprocess.PIPE, text=True)
                   for k in range(args.kernel_writers)]
        cpu_before = cpu_seconds(server.pid)
        load_start = time.time()
        wall = asyncio.run(drive(server, args, figures, commits, curve))
        server_cpu = cpu_seconds(server.pid) - cpu_before
        for kernel in kernels:
            out, _ = kernel.communicate(timeout=120)
            if kernel.returncode != 0:
                raise RuntimeError(f"a kernel writer failed ({kernel.returncode})")
            kernel_commits += int(out.split()[-1])
        breakdown = read_breakdown(probe_file, load_start)
    except BaseException:
        show_server_log(server)
        raise
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"{args.clients} panels every {args.interval:g} s, {args.writers} mount writers + {args.kernel_writers} "
          f"kernel writers ({args.commit_pause:g} s apart), {args.repos} repos x {args.branches} branches, "
          f"{'FUSE' if args.fuse else 'no-FUSE'} mounts, {wall / 60:.1f} min, server CPU {server_cpu:.0f} s")
    print(f"RSS before the load: {rss_at_start:.1f} MiB")
    print("     t(s)   RSS(MiB)   commits (mount writers)")
    for t, rss, made in curve:
        print(f"  {t:7.0f}  {rss:9.1f}  {made:8d}")
    if breakdown:
        print_breakdown(breakdown)
    requests = figures.requests
    total_commits = commits.n + kernel_commits
    for route, values in figures.ms.items():
        print(f"{'a whole refresh' if route == 'refresh' else 'GET /' + route}: n={len(values)} p50={statistics.median(values):.1f} ms p95={pct(values, 0.95):.1f} ms")
    warm_index = next(i for i, (t, _, _) in enumerate(curve) if t >= wall / 4)
    warm, end = curve[warm_index][1], curve[-1][1]
    peak = max(rss for _, rss, _ in curve)
    print(f"requests={requests} commits={total_commits} ({kernel_commits} from kernel writers) "
          f"peak_rss_mb={peak:.1f}")
    last = (f"rss_growth_after_warmup_mb={end - warm:.1f} rss_warm_mb={warm:.1f} rss_end_mb={end:.1f} "
            f"commits={total_commits}")
    print(last)
    write_json(args.json, "soak", args, {
        "minutes": wall / 60, "rss_before_load_mb": rss_at_start, "rss_warm_mb": warm, "rss_end_mb": end,
        "rss_peak_mb": peak, "rss_growth_after_warmup_mb": end - warm, "commits": total_commits,
        "requests": requests, "curve": [{"t_s": t, "rss_mb": rss, "commits": c} for t, rss, c in curve],
        "breakdown": breakdown, "server_env": server_env,
    }, last)


if __name__ == "__main__":
    main()
