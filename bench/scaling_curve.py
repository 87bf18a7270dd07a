"""How commit and listing cost grow with repo size (1k -> 1M files), against the plain filesystem.

    python bench/scaling_curve.py [--sizes 1000,10000,100000,1000000] [--rounds 15]
                                  [--json PATH] [--plots DIR]

One repo (``grow``, one flat directory ``/files``) of the embedded store is grown size by size
(each step one ``put_files`` commit of the new files; contents repeat every 1,000 files), next to
a plain directory holding the same names (empty files: the floor measures names, not bytes). A
real ``jupyter server`` with the extension serves the store over HTTP from the first size on; the
store grows underneath it (from this process, as a kernel would write). At every size, in
``--rounds`` interleaved rounds (order alternating):

- commit of 10 changed files (``LocalBackend.commit`` + ``put_files``) vs the floor: writing the
  same 10 files in the plain directory (open/write/close);
- ``GET /pachls/api/repos`` right after that commit (the listing is rebuilt) and again (kept);
- one page of 400 of ``/files`` at a random position: over HTTP, and in-process
  (``LocalBackend.list_dir``); floors: the plain directory's first 400 entries (``scandir`` +
  ``stat``; a plain directory cannot start a page at a name), and a sorted page as a program
  gets it from a plain directory (``listdir`` + sort + ``stat`` of 400; first 5 rounds only).

Prints p50/p95 per size; with ``--plots DIR`` draws ``perf-commit-scaling.png`` and
``perf-listing-scaling.png`` there (matplotlib, Agg). The last line is
``commit_growth_ratio=<float> page_growth_ratio=<float>``: the p50 at the largest size over the
p50 at the smallest (commit: in-process; page: over HTTP). Flat is 1.0.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import random
import shutil
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

from _bench import add_json_argument, pct, settle, write_json
from api_listing import Client, show_server_log, start_server

from jupyterlab_pachls.pfs import LocalBackend

PAGE = 400
SORTED_ROUNDS = 5


def name(i: int) -> str:
    return f"{i:07d}.txt"


def grow(backend: LocalBackend, plain: Path, start: int, stop: int) -> tuple[float, float]:
    t = time.perf_counter()
    with backend.commit("grow", "master", message=f"grow to {stop}") as c:
        c.put_files((f"/files/{name(i)}", f"content {i % 1000}".encode()) for i in range(start, stop))
    assert c.finished.n_files == stop
    store_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(start, stop):
        os.close(os.open(plain / name(i), os.O_WRONLY | os.O_CREAT, 0o644))
    return store_s, time.perf_counter() - t


def timed(fn, *a):
    t = time.perf_counter()
    result = fn(*a)
    return (time.perf_counter() - t) * 1000, result


def plain_first_page(directory: Path) -> int:
    n = 0
    with os.scandir(directory) as it:
        for entry in itertools.islice(it, PAGE):
            entry.stat()
            n += 1
    return n


def plain_sorted_page(directory: Path, after: str) -> int:
    names = sorted(os.listdir(directory))
    start = bisect.bisect_right(names, after)
    for n in names[start:start + PAGE]:
        os.stat(directory / n)
    return len(names[start:start + PAGE])


def measure(backend: LocalBackend, client: Client, plain: Path, n: int, rounds: int, rng: random.Random) -> dict:
    series: dict[str, list[float]] = {k: [] for k in (
        "commit", "commit_floor", "repos_changed", "repos_kept", "page_http", "page_inproc",
        "page_floor", "page_sorted_floor")}

    def commit(picks, r):
        with backend.commit("grow", "master", message=f"change {n} {r}") as c:
            c.put_files([(f"/files/{name(i)}", f"changed {n} {r} {i}".encode()) for i in picks])
        return c.finished

    def write(picks, r):
        for i in picks:
            with open(plain / name(i), "wb") as out:
                out.write(f"changed {n} {r} {i}".encode())

    warmup = 2
    for r in range(-warmup, rounds):
        if r == 0:
            for values in series.values():
                values.clear()
        picks = rng.sample(range(n), 10)
        if r % 2 == 0:
            ms, finished = timed(commit, picks, r)
            series["commit"].append(ms)
            series["commit_floor"].append(timed(write, picks, r)[0])
        else:
            series["commit_floor"].append(timed(write, picks, r)[0])
            ms, finished = timed(commit, picks, r)
            series["commit"].append(ms)
        ms, body = client.timed("repos")
        series["repos_changed"].append(ms)
        grow_repo = next(x for x in body["repos"] if x["name"] == "grow")
        assert grow_repo["branches"][0]["head"]["id"] == finished.id
        series["repos_kept"].append(client.timed("repos")[0])

        after = f"/files/{name(rng.randrange(max(1, n - PAGE - 1)))}"
        query = urllib.parse.urlencode({"path": "/files", "limit": PAGE, "after": after})
        ms, body = client.timed(f"repos/grow/commits/master/files?{query}")
        assert len(body["items"]) == min(PAGE, n - int(after[7:14]) - 1)
        series["page_http"].append(ms)
        ms, page = timed(lambda: backend.list_dir("grow", "master", "/files", limit=PAGE, after=after))
        assert len(page.items) == len(body["items"])
        series["page_inproc"].append(ms)
        ms, count = timed(plain_first_page, plain)
        assert count == min(PAGE, n)
        series["page_floor"].append(ms)
        if r < SORTED_ROUNDS:
            series["page_sorted_floor"].append(timed(plain_sorted_page, plain, after[7:])[0])
    return {k: {"p50": statistics.median(v), "p95": pct(v, 0.95), "n": len(v)} for k, v in series.items() if v}


LABELS = {
    "commit": "commit of 10 changed files (embedded store)",
    "commit_floor": "floor: write the 10 files in a plain directory",
    "page_http": "page of 400 over REST (GET .../files)",
    "page_inproc": "page of 400 in-process (LocalBackend.list_dir)",
    "page_floor": "floor: first 400 entries of a plain directory (scandir+stat)",
    "page_sorted_floor": "plain directory, sorted page of 400 (listdir+sort+stat)",
    "repos_changed": "GET repos right after a commit (rebuilt)",
    "repos_kept": "GET repos, store unchanged (kept)",
}


def plot(result: dict, out_dir: Path) -> list[Path]:
    """Draw the two PNGs from this benchmark's figures; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    sizes = [p["files"] for p in result["points"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    styles = {
        "commit": ("C0", "o", "-"), "commit_floor": ("0.35", "s", "--"),
        "page_http": ("C0", "o", "-"), "page_inproc": ("C2", "^", "-"),
        "page_floor": ("0.35", "s", "--"), "page_sorted_floor": ("C3", "x", ":"),
        "repos_changed": ("C1", "D", "-"), "repos_kept": ("C4", "v", "-"),
    }
    for filename, title, keys in (
        ("perf-commit-scaling.png", "Commit of 10 changed files vs files in the repo", ["commit", "commit_floor"]),
        ("perf-listing-scaling.png", "Listing cost vs files in the repo",
         ["page_http", "page_inproc", "page_floor", "page_sorted_floor", "repos_changed", "repos_kept"]),
    ):
        fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
        for key in keys:
            xs = [s for s, p in zip(sizes, result["points"]) if key in p["series"]]
            if not xs:
                continue
            color, marker, line = styles[key]
            p50 = [p["series"][key]["p50"] for p in result["points"] if key in p["series"]]
            p95 = [p["series"][key]["p95"] for p in result["points"] if key in p["series"]]
            ax.plot(xs, p50, marker=marker, linestyle=line, color=color, label=LABELS[key] + " (p50)")
            ax.fill_between(xs, p50, p95, color=color, alpha=0.08, linewidth=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("files in the repo (one directory)")
        ax.set_ylabel("ms (line: p50, band: up to p95)")
        ax.set_title(title)
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{s:,}" for s in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path)
        plt.close(fig)
        made.append(path)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000",
                        help="comma-separated repo sizes, increasing")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--plots", metavar="DIR", help="draw the PNGs into DIR")
    add_json_argument(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    assert sizes == sorted(sizes) and sizes[0] > 0, "sizes must increase"

    work = Path(tempfile.mkdtemp(prefix="pachls-curve-bench-"))
    store, plain = work / "store", work / "plain"
    plain.mkdir()
    backend = LocalBackend(store)
    server = None
    points = []
    try:
        for i in range(20):  # a few other repos, so the repos listing is not trivial
            backend.create_repo(f"other{i:02d}")
            with backend.commit(f"other{i:02d}", "master") as c:
                c.put_file("/a.txt", b"a")
            backend.create_branch(f"other{i:02d}", "dev", head="master")
        backend.create_repo("grow")
        rng = random.Random(7)
        have = 0
        for n in sizes:
            store_s, plain_s = grow(backend, plain, have, n)
            have = n
            print(f"grew to {n:,} files: store {store_s:.1f} s, plain directory {plain_s:.1f} s", flush=True)
            if server is None:
                server = start_server(work, store)
                client = Client(server.port, server.token)
            settle()
            for _ in range(3):  # warm up
                client.timed("repos")
                backend.list_dir("grow", "master", "/files", limit=PAGE)
            series = measure(backend, client, plain, n, args.rounds, rng)
            points.append({"files": n, "grow_store_s": store_s, "grow_plain_s": plain_s, "series": series})
            print(f"  {n:>9,} files: " + "  ".join(
                f"{k} p50={v['p50']:.2f} p95={v['p95']:.2f}" for k, v in series.items()), flush=True)
        assert backend.fsck().ok
    except BaseException:
        show_server_log(server)
        raise
    finally:
        if server is not None:
            server.stop()
        backend.close()
        shutil.rmtree(work, ignore_errors=True)

    first, last_point = points[0]["series"], points[-1]["series"]
    commit_growth = last_point["commit"]["p50"] / first["commit"]["p50"]
    page_growth = last_point["page_http"]["p50"] / first["page_http"]["p50"]
    print(f"{'files':>9}  {'commit':>8} {'floor':>7} {'ratio':>6}  {'page http':>9} {'in-proc':>8} "
          f"{'floor':>7} {'sorted':>8}  {'repos(rebuilt)':>14} {'repos(kept)':>11}   (p50 ms)")
    for p in points:
        s = p["series"]
        sorted_ms = s.get("page_sorted_floor", {}).get("p50", float("nan"))
        print(f"{p['files']:>9,}  {s['commit']['p50']:8.2f} {s['commit_floor']['p50']:7.2f} "
              f"{s['commit']['p50'] / s['commit_floor']['p50']:6.1f}  {s['page_http']['p50']:9.2f} "
              f"{s['page_inproc']['p50']:8.2f} {s['page_floor']['p50']:7.2f} {sorted_ms:8.1f}  "
              f"{s['repos_changed']['p50']:14.2f} {s['repos_kept']['p50']:11.2f}")
    result = {"points": points, "commit_growth_ratio": commit_growth, "page_growth_ratio": page_growth}
    if args.plots:
        try:
            for path in plot(result, Path(args.plots)):
                print(f"wrote {path.name}")
        except ImportError:
            print("matplotlib is not installed (scripts/install.sh --bench): no plots")
    last = f"commit_growth_ratio={commit_growth:.3f} page_growth_ratio={page_growth:.3f}"
    print(last)
    write_json(args.json, "scaling_curve", args, result, last)


if __name__ == "__main__":
    main()
