"""Panel routes while a cluster stalls: what needs the cluster answers within its deadline, the rest stays fast.

    python bench/stall.py [--clients 20] [--writers 4] [--seconds 30] [--interval 1.0]
                          [--repos 100] [--stand-in grpc|tcp] [--quick]

Two ``jupyter server`` subprocesses with the extension (``tests/serverproc.JupyterServer``), on 127.0.0.1:

* the *store* server: the embedded store with ``--repos`` repos (one commit each) plus one repo per
  writer;
* the *stalled* server: its saved backend is a Pachyderm cluster at a stand-in that accepts and never
  answers: ``grpc`` (default), a gRPC server that takes every call and never sends a byte of answer
  (the connection is ready, each call waits on its deadline: a pachd whose metadata store hangs);
  ``tcp``, a TCP server that accepts connections and never speaks (the connection never gets ready).
  Its deadlines are the defaults (``PachlsConfig.quick_rpc_timeout``, 5 s, for what the panel polls).

Then, for ``--seconds``:

* ``--clients`` panel clients each, every ``--interval`` seconds from a random start, ask both servers
  at once for ``GET /panel`` (what the panel polls, with the ETag of its last answer as the panel sends
  it), then for one more panel route in turn (health,
  repos, mounts, labeling status, identity, backend), so every route is asked throughout. All clients
  share one event loop, so their own cost does not inflate the figures;
* ``--writers`` writers (4 by default) commit back to back on the store server the way a user does:
  each writes a file into its own read-write mount and presses Commit (``POST /mounts/{name}/commit``),
  so that many mount commits are in flight on the long-operation pool.

Every answer is checked: 200 from the store server; from the stalled one 200 for the routes that need
no cluster, and for those that do (health, backend, panel: ``connected`` false; repos: 503
``unavailable``) the typed error naming the address. Prints p50/p95/max per server and route; the
last line is ``fast_routes_p95_ms=<float> stalled_routes_p95_ms=<float> deadline_ms=<float>``: fast =
every route of the store server and the stalled server's routes that need no cluster; stalled = the
stalled server's routes that ask the cluster; deadline = the longest a call waits for an answer there
(the quick deadline; for ``tcp``, waiting for the connection, ``PachlsConfig.connect_timeout``, 5 s by
default).
Targets: fast <= 100 ms, stalled <= deadline + 100 ms, deadline <= 5,000 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from _bench import add_json_argument, pct, write_json
from api_listing import JupyterServer, show_server_log, start_server
from panel_polling import Commits, Http, sleep_or_stop, writer
from serverproc import free_port

from jupyterlab_pachls.config import PachlsConfig
from jupyterlab_pachls.pfs import LocalBackend

TARGET_FAST_P95_MS = 100.0
TARGET_OVER_DEADLINE_MS = 100.0
TARGET_DEADLINE_MS = 5000.0
#: Routes the panel asks; on the stalled server, those that ask the cluster.
ROUTES = ("health", "repos", "mounts", "labeling", "identity", "backend")
ASK_CLUSTER = frozenset({"panel", "health", "repos", "backend"})


class NeverAnswersGrpc:
    """A gRPC server on 127.0.0.1 that takes every call and never answers (until the client gives up)."""

    def __init__(self, port: int) -> None:
        self.server = grpc.server(ThreadPoolExecutor(max_workers=512), handlers=[self])
        self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def service(self, handler_call_details):  # grpc.GenericRpcHandler: every method, any cardinality
        return grpc.stream_stream_rpc_method_handler(self.hold)

    @staticmethod
    def hold(requests, context):
        while context.is_active():
            time.sleep(0.05)
        return iter(())

    def close(self) -> None:
        self.server.stop(grace=None).wait()


class NeverAnswersTcp:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])  # kept open, never read from nor written to
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def build_store(store: Path, repos: int, writers: int) -> None:
    backend = LocalBackend(store)
    for i in range(repos):
        name = f"repo{i:04d}"
        backend.create_repo(name)
        with backend.commit(name, "master", message="init", author="bench") as c:
            c.put_file("/README.txt", f"repo {i}".encode())
    for w in range(writers):
        backend.create_repo(f"work{w}", description="written to during the benchmark")
    backend.close()


def start_stalled_server(work: Path, address: str) -> JupyterServer:
    """A Jupyter server whose saved backend choice is the cluster at ``address``."""
    work.mkdir(parents=True, exist_ok=True)
    choice = work / "backend.json"
    choice.write_text(json.dumps({"kind": "pachyderm", "pachd_address": address}))
    return JupyterServer(work / "root", store=work / "store", no_fuse=True,
                         config={"PachlsConfig.backend_file": str(choice)}).start(timeout=120)


def wait_until_stalled(server: JupyterServer, stand_in: str, timeout: float = 60.0) -> None:
    """Until the server's health probe meets the stand-in (its channel reconnects within seconds)."""
    meets = "InspectProject got no" if stand_in == "grpc" else "does not answer"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, health = server.api("GET", "health", timeout=timeout)
        if status == 200 and meets in (health["backend"]["error"] or ""):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the stalled server never met the stand-in: {health}")


def check(server: str, route: str, status: int, body: bytes, address: str) -> None:
    """The answer is what the route promises (see the module docstring); RuntimeError otherwise."""
    answer = json.loads(body) if body.strip() else None
    if server == "store" or route not in ASK_CLUSTER:
        if status != 200:
            raise RuntimeError(f"{server} GET /{route} answered {status}: {body[:300]!r}")
        return
    if route == "repos":
        ok = status == 503 and answer["error"] == "unavailable" and answer["details"].get("address") == address
    else:
        backend = {"health": lambda: answer["backend"], "backend": lambda: answer,
                   "panel": lambda: answer["health"]["backend"]}[route]()
        ok = status == 200 and backend["connected"] is False and address in (backend["error"] or "")
    if not ok:
        raise RuntimeError(f"stalled GET /{route}: not the typed unavailable answer: {status} {body[:300]!r}")


async def panel_client(servers: dict[str, Http], address: str, ms: dict, stop: asyncio.Event, interval: float,
                       phase: float, first_route: int) -> None:
    """One panel: ``GET /panel`` and one more route in turn on both servers, every ``interval`` seconds.
    As the panel does, ``GET /panel`` sends the ETag of its last answer (304 while nothing in it changed)."""
    turn = first_route
    etags: dict[str, str | None] = {server: None for server in servers}
    last: dict[str, tuple[int, bytes]] = {}

    async def ask(server: str, route: str) -> None:
        kept = route == "panel" and etags[server] is not None
        start = time.perf_counter()
        status, headers, body = await servers[server].request(
            "GET", "/pachls/api/" + route, headers={"If-None-Match": etags[server]} if kept else None)
        ms[server].setdefault(route, []).append((time.perf_counter() - start) * 1000)
        if route == "panel":
            if status == 304 and kept:
                status, body = last[server]  # what it still is
            else:
                etags[server] = headers.get("Etag") or headers.get("ETag")
                last[server] = (status, body)
        check(server, route, status, body, address)

    async def ask_in_turn(server: str, routes: tuple[str, ...]) -> None:
        for route in routes:
            await ask(server, route)

    await sleep_or_stop(stop, phase)
    while not stop.is_set():
        began = time.perf_counter()
        route = ROUTES[turn % len(ROUTES)]
        turn += 1
        # both servers at once; on each, one request after the other, as a panel polls
        await asyncio.gather(*(ask_in_turn(server, ("panel", route)) for server in servers))
        await sleep_or_stop(stop, max(0.0, interval - (time.perf_counter() - began)))


async def drive(store_server: JupyterServer, stalled_server: JupyterServer, address: str, args) -> tuple[dict, int]:
    servers = {"store": Http(store_server.port, store_server.token),
               "stalled": Http(stalled_server.port, stalled_server.token)}
    ms: dict[str, dict[str, list[float]]] = {"store": {}, "stalled": {}}
    commits, stop_writers, stop = Commits(), asyncio.Event(), asyncio.Event()
    store_http = servers["store"]
    try:
        for w in range(args.writers):
            status, _, body = await store_http.request("POST", "/pachls/api/mounts",
                                                       {"repo": f"work{w}", "mode": "rw", "name": f"work{w}"})
            if status != 201:
                raise RuntimeError(f"mount work{w}: {status} {body[:300]!r}")
        writers = [asyncio.ensure_future(writer(store_http, w, commits, stop_writers, 0.0,
                                                store_server.mount_dir, False)) for w in range(args.writers)]
        rng = random.Random(14)
        clients = [asyncio.ensure_future(panel_client(servers, address, ms, stop, args.interval,
                                                      rng.uniform(0, args.interval), n))
                   for n in range(args.clients)]
        await asyncio.wait(clients + writers, timeout=args.seconds, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        stop_writers.set()
        results = await asyncio.gather(*clients, *writers, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise RuntimeError(f"{len(failed)} clients or writers failed; first: {failed[0]!r}")
    finally:
        for http in servers.values():
            http.close()
    return ms, commits.n


def line(server: str, route: str, values: list[float]) -> str:
    return (f"{server:7} GET /{route:9} n={len(values):4d} p50={statistics.median(values):8.1f} ms "
            f"p95={pct(values, 0.95):8.1f} ms max={max(values):8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--writers", type=int, default=4, help="mount commits in flight, back to back")
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between one client's polls")
    parser.add_argument("--stand-in", choices=("grpc", "tcp"), default="grpc",
                        help="grpc: calls taken and never answered; tcp: connections accepted, never a byte")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--quick", action="store_true", help="12 s of polling (for bench/run_all.py --quick)")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 12.0)

    defaults = PachlsConfig()  # the stalled server's deadlines are left at their defaults
    quick_deadline = defaults.quick_rpc_timeout
    deadline_s = quick_deadline if args.stand_in == "grpc" else max(quick_deadline, defaults.connect_timeout)
    work = Path(tempfile.mkdtemp(prefix="pachls-stall-bench-"))
    port = free_port()
    address = f"grpc://127.0.0.1:{port}"
    store_server = stalled_server = stand_in = None
    try:
        build_store(work / "store", args.repos, args.writers)
        store_server = start_server(work / "embedded", work / "store", no_fuse=True)
        # started while nothing listens at the address: its start-up check gets a quick answer (refused)
        stalled_server = start_stalled_server(work / "stalled", address)
        stand_in = (NeverAnswersGrpc if args.stand_in == "grpc" else NeverAnswersTcp)(port)
        wait_until_stalled(stalled_server, args.stand_in)
        ms, commits = asyncio.run(drive(store_server, stalled_server, address, args))
    except BaseException:
        show_server_log(store_server)
        show_server_log(stalled_server)
        raise
    finally:
        for server in (store_server, stalled_server):
            if server is not None:
                server.stop()
        if stand_in is not None:
            stand_in.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"{args.clients} panel clients (every {args.interval:g} s: GET /panel + one more route, on both servers), "
          f"{args.writers} mount writers committing back to back on the store server ({commits} commits, "
          f"{commits / args.seconds:.1f}/s), {args.repos} repos, {args.seconds:g} s; stalled cluster: "
          f"{args.stand_in} stand-in, deadline {deadline_s:g} s")
    fast, stalled = [], []
    figures: dict = {"commits": commits, "stand_in": args.stand_in}
    for server in ("store", "stalled"):
        for route in ("panel", *ROUTES):
            values = ms[server].get(route, [])
            if not values:
                continue
            print(line(server, route, values))
            (stalled if server == "stalled" and route in ASK_CLUSTER else fast).extend(values)
            figures[f"{server}_{route}_p50_ms"] = statistics.median(values)
            figures[f"{server}_{route}_p95_ms"] = pct(values, 0.95)
    figures.update(fast_routes_p95_ms=pct(fast, 0.95), stalled_routes_p95_ms=pct(stalled, 0.95),
                   deadline_ms=deadline_s * 1000)
    print(f"targets: fast p95 <= {TARGET_FAST_P95_MS:g} ms, stalled p95 <= deadline + {TARGET_OVER_DEADLINE_MS:g} ms, "
          f"deadline <= {TARGET_DEADLINE_MS:g} ms")
    last = (f"fast_routes_p95_ms={figures['fast_routes_p95_ms']:.1f} "
            f"stalled_routes_p95_ms={figures['stalled_routes_p95_ms']:.1f} deadline_ms={figures['deadline_ms']:.1f}")
    print(last)
    write_json(args.json, "stall", args, figures, last)


if __name__ == "__main__":
    main()
