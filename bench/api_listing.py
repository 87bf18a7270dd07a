"""REST listing latency through a real Jupyter server over HTTP.

    python bench/api_listing.py [--repos 1000] [--branches 5] [--files 1000000] [--rounds 50] [--json PATH]

1. ``GET /pachls/api/repos`` (every repo with its branches, one request) on a store of
   ``--repos`` repos with ``--branches`` branches each (every branch at a commit): repeated on
   an unchanged store (the figure of the last line: the server answers from its listing, which
   it keeps while the store's change token holds), then right after each of a series of commits
   made by another process (the listing is rebuilt: printed as "after a change").
2. ``GET /pachls/api/repos/huge/commits/master/files?path=/files&limit=400&after=...``: one page
   of 400 from a directory of ``--files`` files (built with one ``put_files`` commit; contents
   repeat every 1,000 files so the blob store stays small), at random positions.

The store is built in a temporary directory, then ``jupyter server`` runs as a subprocess on
127.0.0.1 with a token; requests go over one keep-alive HTTP connection. Prints p50/p95;
the last line is ``repos_p50_ms=<float> page_p50_ms=<float>`` (targets: <= 50 and <= 30).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from _bench import add_json_argument, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverproc import JupyterServer  # noqa: E402  (the one way tests, stress runs and benchmarks start a server)

from jupyterlab_pachls.pfs import LocalBackend  # noqa: E402


def build_store(store: Path, repos: int, branches: int, files: int) -> None:
    backend = LocalBackend(store)
    start = time.perf_counter()
    for i in range(repos):
        name = f"repo{i:04d}"
        backend.create_repo(name, description=f"bench repo {i}")
        with backend.commit(name, "master", message="init", author="bench") as c:
            c.put_file("/README.txt", f"repo {i}".encode())
        for b in range(1, branches):
            backend.create_branch(name, f"branch{b}", head="master")
    print(f"built {repos} repos x {branches} branches in {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    backend.create_repo("huge")
    with backend.commit("huge", "master", message=f"{files} files") as c:
        c.put_files((f"/files/{i:07d}.txt", f"content {i % 1000}".encode()) for i in range(files))
    assert c.finished.n_files == files
    print(f"built a directory of {files:,} files in {time.perf_counter() - start:.1f} s", flush=True)
    backend.close()


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"token {token}"}

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", "/pachls/api/" + path, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def timed(self, path: str) -> tuple[float, dict]:
        start = time.perf_counter()
        status, body = self.get(path)
        elapsed = (time.perf_counter() - start) * 1000
        assert status == 200, (path, status, body[:300])
        return elapsed, json.loads(body)


def start_server(work: Path, store: Path, *, no_fuse: bool = False) -> JupyterServer:
    """``jupyter server`` with the extension over ``store`` (root ``work``, mounts in ``work/pfs``)."""
    return JupyterServer(work, store=store, no_fuse=no_fuse).start(timeout=120)


def show_server_log(server: JupyterServer | None) -> None:
    """The end of the server's log on stderr (a benchmark failed)."""
    if server is not None:
        sys.stderr.write(server.log_text()[-4000:])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=1_000)
    parser.add_argument("--branches", type=int, default=5)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    add_json_argument(parser)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pachls-api-bench-"))
    store = work / "store"
    server = None
    try:
        build_store(store, args.repos, args.branches, args.files)
        server = start_server(work, store)
        client = Client(server.port, server.token)

        # 1. every repo with its branches, in one request
        for _ in range(3):
            client.timed("repos")
        repos_ms = []
        for _ in range(args.rounds):
            elapsed, body = client.timed("repos")
            repos_ms.append(elapsed)
        n_repos = len(body["repos"])

        # 1b. the same request right after each change to the store (a commit from another
        # process, as a kernel would make): the listing has to be rebuilt every time.
        writer = LocalBackend(store)
        changed_ms = []
        for r in range(max(5, args.rounds // 3)):
            with writer.commit(f"repo{r % args.repos:04d}", "master", message=f"change {r}") as c:
                c.put_file("/change.txt", str(r).encode())
            elapsed, changed = client.timed("repos")
            changed_ms.append(elapsed)
            repo = next(x for x in changed["repos"] if x["name"] == f"repo{r % args.repos:04d}")
            assert {b["name"]: b["head"]["id"] for b in repo["branches"]}["master"] == c.finished.id
        writer.close()
        n_branches = sum(len(r["branches"]) for r in body["repos"])
        assert n_repos == args.repos + 1 and n_branches == args.repos * args.branches + 1, (n_repos, n_branches)

        # 2. one page of 400 from the big directory: first page, then random positions
        rng = random.Random(7)

        def page_path(after: str | None) -> str:
            query = {"path": "/files", "limit": 400}
            if after is not None:
                query["after"] = after
            return "repos/huge/commits/master/files?" + urllib.parse.urlencode(query)

        for _ in range(3):
            client.timed(page_path(None))
        page_ms = []
        for r in range(args.rounds):
            after = None if r == 0 else f"/files/{rng.randrange(args.files - 401):07d}.txt"
            elapsed, body = client.timed(page_path(after))
            assert len(body["items"]) == 400 and body["next"], body.get("next")
            page_ms.append(elapsed)
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

    print(f"GET repos ({n_repos} repos, {n_branches} branches, one request): p50={statistics.median(repos_ms):.2f} ms p95={pct(repos_ms, 0.95):.2f} ms "
          f"min={min(repos_ms):.2f} ms")
    print(f"GET repos right after a change to the store (rebuilt): p50={statistics.median(changed_ms):.2f} ms "
          f"p95={pct(changed_ms, 0.95):.2f} ms")
    print(f"GET files page of 400 in a directory of {args.files:,}: p50={statistics.median(page_ms):.2f} ms "
          f"p95={pct(page_ms, 0.95):.2f} ms min={min(page_ms):.2f} ms")
    last = f"repos_p50_ms={statistics.median(repos_ms):.2f} page_p50_ms={statistics.median(page_ms):.2f}"
    print(last)
    write_json(args.json, "api_listing", args, {
        "repos": n_repos, "branches": n_branches,
        "repos_p50_ms": statistics.median(repos_ms), "repos_p95_ms": pct(repos_ms, 0.95), "repos_min_ms": min(repos_ms),
        "repos_changed_p50_ms": statistics.median(changed_ms), "repos_changed_p95_ms": pct(changed_ms, 0.95),
        "page_p50_ms": statistics.median(page_ms), "page_p95_ms": pct(page_ms, 0.95), "page_min_ms": min(page_ms),
    }, last)


if __name__ == "__main__":
    main()
