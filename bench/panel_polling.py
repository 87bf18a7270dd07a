"""Many Pachyderm panels polling one Jupyter server while commits land: one poll request or three.

    python bench/panel_polling.py [--clients 20] [--repos 100] [--branches 3] [--writers 2]
                                  [--kernel-writers 0] [--seconds 30] [--interval 1.0]
                                  [--panel both|one|three] [--commit-pause 0] [--fuse] [--contents-api]
                                  [--quick]

The store (embedded) gets ``--repos`` repos with ``--branches`` branches each, every branch at a
commit, plus one repo per writer. ``jupyter server`` runs as a subprocess on 127.0.0.1 (FUSE
mounts with ``--fuse``, else no-FUSE). Then, for ``--seconds`` per way of polling (``--panel``;
``both``, the default, runs ``three`` then ``one`` on the same server, so their figures compare):

* ``--clients`` panel clients each refresh every ``--interval`` seconds from a random start (the
  panel's default is 10 s; the default here is ten times as often; 0 = back to back):
  - ``one``: what the panel does (``src/model.ts``): ``GET /panel`` with ``If-None-Match`` set to
    the ETag of its last answer (``src/api/index.ts``; the server answers 304 while nothing in it
    changed);
  - ``three``: what it did before: ``GET /repos`` with ``If-None-Match``, ``GET /mounts`` and ``GET
    /health``, the three at once;
  all clients share one event loop, so their own cost does not inflate the figures;
* ``--writers`` writers commit continuously the way a user does: each has a read-write mount of
  its own repo, writes a file into the mount folder (as a notebook does; ``--contents-api``:
  through Jupyter's contents API, as the file browser does) and presses Commit (``POST
  /mounts/{name}/commit``); ``--kernel-writers`` more commit straight to the store from another
  process. Every commit changes the repos listing, so it is rebuilt (once, see ``listing.py``).

Every answer is checked (200/304, JSON listing of every repo). Prints, per way of polling, p50/p95/
p99 of each route and of a whole refresh, requests/s, bytes and server CPU per refresh, commits/s,
how many answers were 304; the last line is ``panel_p95_ms=<float> (target < 100) three_refresh_p95_ms=
<float> cpu_ms_per_refresh_one=<float> cpu_ms_per_refresh_three=<float> commits_per_s=<float>``
(a figure of a way not run is ``nan``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
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
from api_listing import show_server_log, start_server

from jupyterlab_pachls.pfs import LocalBackend

TARGET_PANEL_P95_MS = 100.0  # as GET /repos had (#8)

#: commits to one repo straight through the store for a while, prints how many
KERNEL_WRITER = """
import sys, time
from jupyterlab_pachls.pfs import LocalBackend
store, repo, seconds, pause = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
backend = LocalBackend(store)
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    with backend.commit(repo, "master", message=f"change {n}", author="kernel") as c:
        c.put_file(f"/file{n % 50:02d}.txt", f"change {n}".encode())
    n += 1
    time.sleep(pause)
backend.close()
print(n)
"""


def build_store(store: Path, repos: int, branches: int, writers: int, kernel_writers: int) -> None:
    backend = LocalBackend(store)
    start = time.perf_counter()
    for i in range(repos):
        name = f"repo{i:04d}"
        backend.create_repo(name, description=f"bench repo {i}")
        with backend.commit(name, "master", message="init", author="bench") as c:
            c.put_file("/README.txt", f"repo {i}".encode())
        for b in range(1, branches):
            backend.create_branch(name, f"branch{b}", head="master")
    for w in range(writers):
        backend.create_repo(f"work{w}", description="written to during the benchmark")
    for k in range(kernel_writers):
        backend.create_repo(f"kernel{k}", description="written to during the benchmark from another process")
    backend.close()
    print(f"built {repos} repos x {branches} branches (+{writers} work repos) in "
          f"{time.perf_counter() - start:.1f} s", flush=True)


class Http:
    """Requests with the token over tornado's client (keep-alive), all from one event loop."""

    def __init__(self, port: int, token: str) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"token {token}"}
        self.client = AsyncHTTPClient(force_instance=True, max_clients=256)

    async def request(self, method: str, path: str, body: object = None,
                      headers: dict | None = None) -> tuple[int, dict, bytes]:
        from tornado.httpclient import HTTPRequest

        request = HTTPRequest(self.base + path, method=method, headers=dict(self.headers, **(headers or {})),
                              body=json.dumps(body) if body is not None else (b"" if method in ("POST", "PUT") else None),
                              request_timeout=120, connect_timeout=120)
        response = await self.client.fetch(request, raise_error=False)
        if response.code == 599:
            raise RuntimeError(f"{method} {path}: {response.error}")
        return response.code, dict(response.headers), response.body or b""

    def close(self) -> None:
        self.client.close()


class Conn:
    """One blocking connection, only to wait for the server to answer."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"token {token}"}

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", "/pachls/api/" + path, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


class Figures:
    """What one way of polling (``one`` or ``three``) measured."""

    def __init__(self, way: str) -> None:
        self.way = way
        routes = ["panel"] if way == "one" else ["repos", "mounts", "health"]
        self.ms: dict[str, list[float]] = {route: [] for route in routes + ["refresh"]}
        self.not_modified = 0  # 304 answers of the route sent with If-None-Match
        self.bytes = 0  # response bodies received
        self.commits = 0
        self.wall = 0.0
        self.server_cpu = 0.0

    @property
    def refreshes(self) -> int:
        return len(self.ms["refresh"])

    @property
    def requests(self) -> int:
        return sum(len(v) for route, v in self.ms.items() if route != "refresh")


async def panel_client(http: Http, figures: Figures, stop: asyncio.Event, interval: float, n_repos: int,
                       phase: float) -> None:
    """One panel: a refresh (``figures.way``) every ``interval`` seconds (first after ``phase``)."""
    etag: str | None = None

    def check_listing(listing: dict, route: str) -> None:
        if len(listing["repos"]) < n_repos:
            raise RuntimeError(f"GET /{route} listed {len(listing['repos'])} repos, expected >= {n_repos}")

    async def kept(route: str) -> None:
        """The ETag-kept route: repos (three) or panel (one)."""
        nonlocal etag
        start = time.perf_counter()
        status, headers, body = await http.request(
            "GET", "/pachls/api/" + route, headers={"If-None-Match": etag} if etag else None)
        figures.ms[route].append((time.perf_counter() - start) * 1000)
        figures.bytes += len(body)
        if status == 304:
            figures.not_modified += 1
            return
        if status != 200:
            raise RuntimeError(f"GET /{route} answered {status}: {body[:300]!r}")
        answer = json.loads(body)
        if route == "panel":
            if answer["errors"]:
                raise RuntimeError(f"GET /panel: a part failed: {answer['errors']}")
            check_listing(answer["repos"], route)
        else:
            check_listing(answer, route)
        etag = headers.get("Etag") or headers.get("ETag")

    async def simple(route: str) -> None:
        start = time.perf_counter()
        status, _, body = await http.request("GET", "/pachls/api/" + route)
        figures.ms[route].append((time.perf_counter() - start) * 1000)
        figures.bytes += len(body)
        if status != 200:
            raise RuntimeError(f"GET /{route} answered {status}: {body[:300]!r}")
        json.loads(body)

    await sleep_or_stop(stop, phase)
    while not stop.is_set():
        began = time.perf_counter()
        if figures.way == "one":
            await kept("panel")
        else:
            await asyncio.gather(kept("repos"), simple("mounts"), simple("health"))  # as Promise.all did
        figures.ms["refresh"].append((time.perf_counter() - began) * 1000)
        await sleep_or_stop(stop, max(0.0, interval - (time.perf_counter() - began)) if interval else 0)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


class Commits:
    """Commits made so far by the REST writers (all ways of polling)."""

    def __init__(self) -> None:
        self.n = 0


async def writer(http: Http, w: int, commits: Commits, stop: asyncio.Event, pause: float, mount_dir: Path,
                 contents_api: bool) -> None:
    """Write a file into a read-write mount, commit, again (``pause`` seconds between commits)."""
    name = f"work{w}"
    n = 0
    while not stop.is_set():
        if contents_api:  # the file browser's way
            status, _, body = await http.request("PUT", f"/api/contents/pfs/{name}/file{n % 50:02d}.txt",
                                                 {"type": "file", "format": "text", "content": f"change {n}\n"})
            if status not in (200, 201):
                raise RuntimeError(f"write into {name}: {status} {body[:300]!r}")
        else:  # a notebook's or a terminal's way
            await asyncio.to_thread((mount_dir / name / f"file{n % 50:02d}.txt").write_text, f"change {n}\n")
        status, _, body = await http.request("POST", f"/pachls/api/mounts/{name}/commit", {"message": f"change {n}"})
        if status != 201:
            raise RuntimeError(f"commit {name}: {status} {body[:300]!r}")
        commits.n += 1
        n += 1
        await sleep_or_stop(stop, pause)
    await http.request("DELETE", f"/pachls/api/mounts/{name}?discard=true")


async def drive(port: int, token: str, pid: int, args, ways: list[Figures]) -> None:
    """The writers for the whole run; the panel clients of each way of polling in turn."""
    http = Http(port, token)
    stop_writers = asyncio.Event()
    commits = Commits()
    for w in range(args.writers):
        name = f"work{w}"
        status, _, body = await http.request("POST", "/pachls/api/mounts", {"repo": name, "mode": "rw", "name": name})
        if status != 201:
            raise RuntimeError(f"mount {name}: {status} {body[:300]!r}")
    writers = [asyncio.ensure_future(writer(http, w, commits, stop_writers, args.commit_pause, args.mount_dir,
                                            args.contents_api)) for w in range(args.writers)]
    try:
        for figures in ways:
            stop = asyncio.Event()
            rng = random.Random(5)
            clients = [asyncio.ensure_future(panel_client(http, figures, stop, args.interval, args.repos,
                                                          rng.uniform(0, args.interval)))
                       for _ in range(args.clients)]
            cpu_before, commits_before, start = cpu_seconds(pid), commits.n, time.perf_counter()
            await asyncio.wait(clients + writers, timeout=args.seconds, return_when=asyncio.FIRST_EXCEPTION)
            stop.set()
            results = await asyncio.gather(*clients, return_exceptions=True)
            figures.wall = time.perf_counter() - start
            figures.server_cpu = cpu_seconds(pid) - cpu_before
            figures.commits = commits.n - commits_before
            failed = [r for r in results if isinstance(r, BaseException)] + [
                w.exception() for w in writers if w.done() and w.exception() is not None]
            if failed:
                raise RuntimeError(f"{len(failed)} clients or writers failed; first: {failed[0]!r}")
    finally:
        stop_writers.set()
        results = await asyncio.gather(*writers, return_exceptions=True)
        http.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise RuntimeError(f"{len(errors)} writers failed; first: {errors[0]!r}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def line(route: str, values: list[float]) -> str:
    what = "a whole refresh" if route == "refresh" else f"GET /{route}"
    return (f"{what}: n={len(values)} p50={statistics.median(values):.1f} ms p95={pct(values, 0.95):.1f} ms "
            f"p99={pct(values, 0.99):.1f} ms max={max(values):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--branches", type=int, default=3)
    parser.add_argument("--writers", type=int, default=2,
                        help="writers committing through read-write mounts and the REST API")
    parser.add_argument("--kernel-writers", type=int, default=0,
                        help="writers committing straight to the store from another process (as a kernel can)")
    parser.add_argument("--contents-api", action="store_true",
                        help="REST writers write through Jupyter's contents API (default: into the mount folder)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between one client's refreshes")
    parser.add_argument("--commit-pause", type=float, default=0.0,
                        help="seconds a writer waits between its commits (0: back to back)")
    parser.add_argument("--panel", choices=("both", "one", "three"), default="both",
                        help="one: GET /panel (what the panel does); three: /repos + /mounts + /health (before); "
                             "both: three, then one, on the same server")
    parser.add_argument("--fuse", action="store_true", help="FUSE mounts (default: no-FUSE)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--quick", action="store_true", help="10 s per way of polling (for bench/run_all.py --quick)")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 10.0)

    ways = [Figures(way) for way in (("three", "one") if args.panel == "both" else (args.panel,))]
    work = Path(tempfile.mkdtemp(prefix="pachls-poll-bench-"))
    store = work / "store"
    server = None
    kernel_commits = 0
    try:
        build_store(store, args.repos, args.branches, args.writers, args.kernel_writers)
        server = start_server(work, store, no_fuse=not args.fuse)
        port, token = server.port, server.token
        args.mount_dir = work / "pfs"
        kernels = [subprocess.Popen([sys.executable, "-c", KERNEL_WRITER, str(store), f"kernel{k}",
                                     str(args.seconds * len(ways)), str(args.commit_pause)],
                                    stdout=subprocess.PIPE, text=True)
                   for k in range(args.kernel_writers)]
        asyncio.run(drive(port, token, server.pid, args, ways))
        for kernel in kernels:
            out, _ = kernel.communicate(timeout=120)
            if kernel.returncode != 0:
                raise RuntimeError(f"a kernel writer failed ({kernel.returncode})")
            kernel_commits += int(out.split()[-1])
    except BaseException:
        show_server_log(server)
        raise
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"{args.clients} panel clients (refresh every {args.interval:g} s), {args.writers} REST writers + "
          f"{args.kernel_writers} kernel writers ({'back to back' if not args.commit_pause else f'{args.commit_pause:g} s apart'}, "
          f"{kernel_commits} kernel commits in all), {args.repos} repos x {args.branches} branches, "
          f"{'FUSE' if args.fuse else 'no-FUSE'} mounts, {args.seconds:g} s per way of polling")
    summary: dict[str, dict] = {}
    for figures in ways:
        ms, wall = figures.ms, figures.wall
        kept_route = "panel" if figures.way == "one" else "repos"
        print(f"-- {figures.way}: " + ("GET /panel (what the panel does)" if figures.way == "one"
                                       else "GET /repos + /mounts + /health at once (what it did before)"))
        for route in ms:
            print(line(route, ms[route]))
        print(f"GET /{kept_route} answered 304 (unchanged) {figures.not_modified} of {len(ms[kept_route])} times")
        print(f"refreshes/s={figures.refreshes / wall:.1f} requests/s={figures.requests / wall:.1f} "
              f"bytes per refresh={figures.bytes / max(figures.refreshes, 1):.0f} "
              f"commits/s={figures.commits / wall:.1f} (REST writers)")
        print(f"server CPU: {figures.server_cpu:.1f} s in {wall:.1f} s ({100 * figures.server_cpu / wall:.0f}% of one "
              f"core), {1000 * figures.server_cpu / max(figures.refreshes, 1):.2f} ms per refresh (commits included)")
        summary[figures.way] = {
            "seconds": wall, "refreshes": figures.refreshes, "requests": figures.requests,
            "requests_per_s": figures.requests / wall, "not_modified": figures.not_modified,
            "bytes_per_refresh": figures.bytes / max(figures.refreshes, 1), "server_cpu_s": figures.server_cpu,
            "cpu_ms_per_refresh": 1000 * figures.server_cpu / max(figures.refreshes, 1),
            "commits": figures.commits, "commits_per_s": figures.commits / wall,
            **{f"{route}_{name}_ms": fn(ms[route]) for route in ms for name, fn in (
                ("p50", statistics.median), ("p95", lambda v: pct(v, 0.95)), ("p99", lambda v: pct(v, 0.99)))},
        }
    nan = float("nan")
    one, three = summary.get("one", {}), summary.get("three", {})
    commits = sum(f.commits for f in ways) + kernel_commits
    last = (f"panel_p95_ms={one.get('panel_p95_ms', nan):.1f} (target < {TARGET_PANEL_P95_MS:g}) "
            f"three_refresh_p95_ms={three.get('refresh_p95_ms', nan):.1f} "
            f"cpu_ms_per_refresh_one={one.get('cpu_ms_per_refresh', nan):.2f} "
            f"cpu_ms_per_refresh_three={three.get('cpu_ms_per_refresh', nan):.2f} "
            f"commits_per_s={commits / sum(f.wall for f in ways):.1f}")
    print(last)
    write_json(args.json, "panel_polling", args, {
        "clients": args.clients, "writers": args.writers, "repos": args.repos, **summary,
        # flat keys: what the panel polls now, and the listing route as polled before (bench/run_all.py)
        "panel_p95_ms": one.get("panel_p95_ms", nan), "repos_p95_ms": three.get("repos_p95_ms", nan),
        "kernel_commits": kernel_commits, "commits": commits,
    }, last)


if __name__ == "__main__":
    main()
