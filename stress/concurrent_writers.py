"""Concurrent writers, long variant: N writers x M commits on one branch through the REST API.

    .venv/bin/python stress/concurrent_writers.py [--writers 4] [--commits 50] [--shared 1]
                                                  [--trials 1] [--mode fuse|nofuse|both] [--keep]

Each trial starts ``jupyter server`` with the extension (a subprocess on 127.0.0.1, a token, a
throwaway embedded store), then runs two rounds on fresh repos with the writers of
``tests/concurrent_writers.py``: each writer mounts the branch read-write under its own name,
writes files through Jupyter's contents API, commits through ``POST /mounts/{name}/commit`` and,
when refused, checks the 409 ``conflict`` and its paths, discards, refreshes and writes again.

* ``shared``: every change also rewrites one of ``--shared`` files all writers write: conflicts
  are expected; every one must be a 409 naming only shared paths that really changed.
* ``disjoint``: writers touch only their own files: all must land with zero conflicts.

After each round the branch is read back through the API: every landed commit is in the history
once, nothing else is, each commit holds exactly its files with its bytes, and the head is the
union of the landed changes. The server log must hold no traceback. Prints one line per round and
ends with ``writers=W commits_per_writer=M trials=T landed=N conflicts=C lost=0 spurious=0
server_errors=0`` (exit status 1 on any failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import concurrent_writers as cw  # noqa: E402
from serverproc import JupyterServer  # noqa: E402


def make_fetch(port: int, token: str):
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    client = AsyncHTTPClient(force_instance=True, max_clients=64)
    base = f"http://127.0.0.1:{port}/"

    async def fetch(method: str, path: str, body: Any = None, params: dict | None = None, raw: bool = False):
        from urllib.parse import quote, urlencode

        url = base + quote(path) + ("?" + urlencode(params) if params else "")
        data = json.dumps(body) if body is not None else (b"" if method in ("POST", "PUT", "PATCH") else None)
        response = await client.fetch(HTTPRequest(url, method=method, body=data, request_timeout=300,
                                                  headers={"Authorization": f"token {token}"}), raise_error=False)
        if response.code == 599:
            raise RuntimeError(f"{method} {path}: {response.error}")
        if raw:
            return response.code, response.body
        return response.code, (json.loads(response.body) if response.body else None)

    return fetch, client


async def trial(port: int, token: str, args, n: int, mode: str, totals: dict) -> None:
    fetch, client = make_fetch(port, token)
    try:
        for kind, shared in (("shared", args.shared), ("disjoint", 0)):
            repo = f"{kind}{n}"
            try:
                outcome = await cw.run(fetch, repo, writers=args.writers, commits=args.commits, shared=shared)
                await cw.verify(fetch, outcome, writers=args.writers, commits=args.commits)
                if kind == "disjoint" and outcome.refused:
                    totals["spurious"] += len(outcome.refused)
                    print(f"  spurious conflicts: {[r.paths for r in outcome.refused][:5]}")
            except AssertionError:
                totals["lost"] += 1
                traceback.print_exc()
                print(f"trial {n} {mode} {kind}: FAILED (above)", flush=True)
                status, body = await cw.api(fetch, "GET", "mounts")  # leave no mount to the next round
                for mount in (body or {}).get("mounts", []):
                    await cw.api(fetch, "DELETE", f"mounts/{mount['name']}", params={"discard": "true"})
                continue
            totals["landed"] += len(outcome.landed)
            totals["conflicts"] += len(outcome.refused)
            print(f"trial {n} {mode} {kind}: {args.writers} writers x {args.commits} commits: {outcome.summary()}",
                  flush=True)
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--commits", type=int, default=50, help="commits per writer")
    parser.add_argument("--shared", type=int, default=1, help="files every writer rewrites (shared round)")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--mode", choices=["fuse", "nofuse", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    from jupyterlab_pachls.mount import fuse_status

    modes = ["fuse", "nofuse"] if args.mode == "both" else [args.mode]
    if "fuse" in modes and not fuse_status()[0]:
        print(f"FUSE is not available here ({fuse_status()[1]}); running no-FUSE only")
        modes = [m for m in modes if m != "fuse"] or ["nofuse"]
    totals = {"landed": 0, "conflicts": 0, "lost": 0, "spurious": 0, "server_errors": 0}
    work = Path(tempfile.mkdtemp(prefix="pachls-writers-"))
    start = time.perf_counter()
    try:
        for mode in modes:
            for n in range(args.trials):
                here = work / f"{mode}-{n}"
                here.mkdir()
                server = JupyterServer(here / "root", store=here / "store", no_fuse=mode != "fuse").start(120)
                try:
                    asyncio.run(trial(server.port, server.token, args, n, mode, totals))
                finally:
                    server.stop()
                log = server.log_text()
                errors = log.count("Traceback")
                if errors:
                    totals["server_errors"] += errors
                    sys.stderr.write(log[-4000:])
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wall {time.perf_counter() - start:.0f} s over {len(modes)} presentation(s): {', '.join(modes)}")
    print(f"writers={args.writers} commits_per_writer={args.commits} trials={args.trials * len(modes)} "
          f"landed={totals['landed']} conflicts={totals['conflicts']} lost={totals['lost']} "
          f"spurious={totals['spurious']} server_errors={totals['server_errors']}")
    return 1 if totals["lost"] or totals["spurious"] or totals["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
