"""The repos listing through the Pachyderm backend against ``jupyter pachls serve``: calls and latency per poll.

    python bench/cluster_listing.py [--repos 1000] [--branches 5] [--rounds 10] [--quick] [--json PATH]

A store of ``--repos`` repos with ``--branches`` branches each (every branch at a commit) is
built in a temporary directory and served by ``jupyter pachls serve`` (its module, in its own
process, on a free loopback port). This process polls the listing the panel polls
(``GET /pachls/api/repos`` answers ``ReposListing.load``: body and ETag) through a
``PachydermBackend``, and counts the calls the backend makes to the cluster:

1. the first poll (nothing known yet: every branch head is inspected once);
2. ``--rounds`` polls of the unchanged cluster (the figure of the last line);
3. a poll right after each of ``--rounds // 2`` (at least 3) commits made through a second ``PachydermBackend``
   (as a kernel's client would), each to another repo.

Prints calls per poll and p50/p95 of each phase; the last line is
``rpcs_per_unchanged_poll=<int>`` (target: a handful, whatever the number of repos).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _bench import add_json_argument, pct, write_json

from jupyterlab_pachls.listing import ReposListing
from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.pachyderm import PachydermBackend


def build_store(store: Path, repos: int, branches: int) -> None:
    backend = LocalBackend(store)
    start = time.perf_counter()
    for i in range(repos):
        name = f"repo{i:04d}"
        backend.create_repo(name, description=f"bench repo {i}")
        with backend.commit(name, "master", message="init", author="bench") as c:
            c.put_file("/README.txt", f"repo {i}".encode())
        for b in range(1, branches):
            backend.create_branch(name, f"branch{b}", head="master")
    backend.close()
    print(f"built {repos} repos x {branches} branches in {time.perf_counter() - start:.1f} s", flush=True)


def start_serve(store: Path) -> tuple[subprocess.Popen, str]:
    """``jupyter pachls serve`` over ``store`` on a free port; (process, its grpc:// address)."""
    process = subprocess.Popen([sys.executable, "-m", "jupyterlab_pachls.pfs.server", "serve", "--port", "0",
                                "--store", str(store), "--log-level", "WARNING"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    found = re.search(r"grpc://[\d.]+:\d+", line)
    if not found:
        process.kill()
        raise RuntimeError(f"jupyter pachls serve did not start: {line}{process.stdout.read()}")
    return process, found.group(0)


class CallCount:
    """Counts the calls ``backend`` makes to its cluster, by name (every call goes through its channel)."""

    def __init__(self, backend: PachydermBackend) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()  # a first listing inspects heads from several threads
        channel = backend.channel
        for method in ("rpc", "stream"):
            made = getattr(channel, method)

            def counted(what, fn, _made=made, **kwargs):
                with self._lock:
                    self.calls[what] += 1
                return _made(what, fn, **kwargs)
            setattr(channel, method, counted)

    def taken(self) -> collections.Counter[str]:
        with self._lock:
            counted, self.calls = self.calls, collections.Counter()
        return counted


def poll(listing: ReposListing, count: CallCount) -> tuple[float, int, collections.Counter[str], bytes]:
    """(ms, calls, calls by name, body) of one load of the listing."""
    count.taken()
    start = time.perf_counter()
    body, _ = listing.load()
    elapsed = (time.perf_counter() - start) * 1000
    calls = count.taken()
    return elapsed, sum(calls.values()), calls, body


def describe(calls: collections.Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=1_000)
    parser.add_argument("--branches", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="50 repos, 6 rounds (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.repos, args.rounds = 50, 6

    work = Path(tempfile.mkdtemp(prefix="pachls-cluster-listing-"))
    store = work / "store"
    process = None
    reader = writer = None
    try:
        build_store(store, args.repos, args.branches)
        process, address = start_serve(store)
        reader = PachydermBackend(pachd_address=address)
        writer = PachydermBackend(pachd_address=address)
        count = CallCount(reader)
        listing = ReposListing(reader)

        first_ms, first_calls, first_by_name, _ = poll(listing, count)
        print(f"first poll (every head inspected once): {first_calls} calls ({describe(first_by_name)}), "
              f"{first_ms:.0f} ms", flush=True)

        unchanged_ms, unchanged_calls = [], []
        for _ in range(args.rounds):
            elapsed, calls, by_name, body = poll(listing, count)
            unchanged_ms.append(elapsed)
            unchanged_calls.append(calls)
        repos_seen = body.count(b'"project": ')  # each repo's JSON has its project once
        print(f"unchanged poll: {max(unchanged_calls)} calls ({describe(by_name)}), "
              f"p50={statistics.median(unchanged_ms):.1f} ms p95={pct(unchanged_ms, 0.95):.1f} ms", flush=True)

        changed_ms, changed_calls = [], []
        for r in range(max(3, args.rounds // 2)):
            repo = f"repo{(r * 7) % args.repos:04d}"
            with writer.commit(repo, "master", message=f"change {r}") as c:
                c.put_file("/change.txt", str(r).encode())
            elapsed, calls, by_name, body = poll(listing, count)
            assert c.finished.id.encode() in body, "the listing after a commit shows it"
            changed_ms.append(elapsed)
            changed_calls.append(calls)
        print(f"poll right after one commit: {max(changed_calls)} calls ({describe(by_name)}), "
              f"p50={statistics.median(changed_ms):.1f} ms p95={pct(changed_ms, 0.95):.1f} ms", flush=True)
    finally:
        for backend in (reader, writer):
            if backend is not None:
                backend.close()
        if process is not None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    per_poll = max(unchanged_calls)
    print(f"{repos_seen} repos x {args.branches} branches; calls per unchanged poll {per_poll} "
          f"(asking per repo and per branch: {2 + repos_seen + 2 * repos_seen * args.branches}, ListRepo twice, "
          "ListBranch per repo, InspectBranch and InspectCommit per branch)")
    last = f"rpcs_per_unchanged_poll={per_poll}"
    print(last)
    write_json(args.json, "cluster_listing", args, {
        "repos": repos_seen, "branches_per_repo": args.branches,
        "first_poll_calls": first_calls, "first_poll_ms": first_ms,
        "rpcs_per_unchanged_poll": per_poll,
        "unchanged_p50_ms": statistics.median(unchanged_ms), "unchanged_p95_ms": pct(unchanged_ms, 0.95),
        "rpcs_per_poll_after_commit": max(changed_calls),
        "after_commit_p50_ms": statistics.median(changed_ms), "after_commit_p95_ms": pct(changed_ms, 0.95),
    }, last)


if __name__ == "__main__":
    main()
