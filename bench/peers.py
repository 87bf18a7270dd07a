"""Import against its peers: the same tree of N small files turned into one commit.

Sides, each round in a rotating order (so load from other work hits every side alike):

- ``cp``: ``cp -r SRC DST`` into an empty directory on the same disk (the floor: no versioning);
- ``api``: ``DirectClient.put("bench@master", SRC)`` into a fresh repo of an embedded store;
- ``rest``: ``ServerClient.put`` through a running Jupyter server (one server for the whole run,
  a fresh repo each round): the tar is made while sent and read while it arrives;
- ``git``: ``git add -A`` + ``git commit`` with SRC as the work tree of a fresh repository;
- ``oxen``: ``Repo.add`` + ``Repo.commit`` of oxenai (the Python package, the same Rust core as the
  ``oxen`` command) in a fresh repository over SRC (its ``.oxen`` removed after each round).

The dirty pages of each step are flushed (``sync``) before the next one starts, outside the
timings. Figures are medians over the rounds with min and max; each round gives paired ratios.
"ours" is the slower of ``api`` and ``rest``. The last line is
``oxen_vs_ours=<float> git_vs_ours=<float> ours_vs_cp=<float>``: over all sizes, the worst of
each (targets: >= 4, >= 2, <= 1.5).

Usage: python bench/peers.py [--files 10000,100000] [--size 2048] [--dirs 100] [--rounds 3]
       [--sides cp,api,rest,git,oxen] [--dir DIR] [--json PATH] [--plots DIR]

With ``--plots DIR`` it draws ``perf-import-peers.png`` there: each side's median time against N
(log-log, min to max as bars; matplotlib, Agg).
oxenai comes with the ``bench`` extra (``pip install -e .[bench]``); without it the oxen side is
skipped and its ratio printed as ``nan``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _bench import add_json_argument, settle, spread, write_json  # noqa: E402
from jupyterlab_pachls.client import DirectClient  # noqa: E402
from jupyterlab_pachls.client.http import ServerClient  # noqa: E402
from jupyterlab_pachls.pfs import LocalBackend  # noqa: E402
from serverproc import JupyterServer  # noqa: E402

ALL_SIDES = ("cp", "api", "rest", "git", "oxen")
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def build_source(src: Path, files: int, size: int, dirs: int) -> None:
    """``files`` files of ``size`` random bytes spread over ``dirs`` directories."""
    for d in range(dirs):
        (src / f"d{d:03d}").mkdir(parents=True)
    for i in range(files):
        (src / f"d{i % dirs:03d}" / f"f{i:06d}.bin").write_bytes(os.urandom(size))


class Sides:
    """Runs one side once on ``src`` and returns its seconds (setup and cleanup not timed)."""

    def __init__(self, work: Path, server: JupyterServer | None) -> None:
        self.work = work
        self.server = server

    def fresh(self, name: str) -> Path:
        path = self.work / f"{name}-{uuid.uuid4().hex[:8]}"
        return path

    def cp(self, src: Path) -> float:
        dst = self.fresh("cp")
        started = time.perf_counter()
        subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
        took = time.perf_counter() - started
        settle()
        shutil.rmtree(dst)
        return took

    def api(self, src: Path) -> float:
        store = self.fresh("store")
        LocalBackend(str(store)).create_repo("bench")
        with DirectClient({"kind": "local", "path": str(store)}, author="bench") as client:
            started = time.perf_counter()
            commit = client.put("bench@master", src, progress=False)
            took = time.perf_counter() - started
        assert commit.id
        settle()
        shutil.rmtree(store)
        return took

    def rest(self, src: Path) -> float:
        assert self.server is not None
        repo = f"bench-{uuid.uuid4().hex[:8]}"
        with ServerClient(self.server.url, self.server.token) as client:
            client.create_repo(repo)
            started = time.perf_counter()
            client.put(f"{repo}@master", src, progress=False)
            took = time.perf_counter() - started
        settle()
        return took

    def git(self, src: Path) -> float:
        git_dir = self.fresh("git")
        env = {**os.environ, **GIT_ENV}
        base = ["git", f"--git-dir={git_dir}", f"--work-tree={src}"]
        subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True, env=env)
        subprocess.run(["git", f"--git-dir={git_dir}", "config", "core.bare", "false"], check=True, env=env)
        started = time.perf_counter()
        subprocess.run([*base, "add", "-A"], check=True, env=env)
        subprocess.run([*base, "commit", "-q", "-m", "import"], check=True, env=env)
        took = time.perf_counter() - started
        settle()
        shutil.rmtree(git_dir)
        return took

    def oxen(self, src: Path) -> float:
        import oxen

        try:
            repo = oxen.Repo(str(src))
            repo.init()
            started = time.perf_counter()
            repo.add(str(src))
            repo.commit("import")
            took = time.perf_counter() - started
            settle()
        finally:
            shutil.rmtree(src / ".oxen", ignore_errors=True)
        return took


def configure_oxen(home: Path) -> bool:
    """oxenai's commit needs a user: one in a private config dir. False without oxenai."""
    try:
        import oxen
        from oxen import user
    except ImportError:
        return False
    os.environ["OXEN_CONFIG_DIR"] = str(home)  # never the user's own ~/.config/oxen
    home.mkdir(parents=True, exist_ok=True)
    try:
        user.config_user("bench", "bench@example.com", str(home / "user_config.toml"))
    except TypeError:
        user.config_user("bench", "bench@example.com")
    return oxen is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="10000,100000", help="comma-separated sizes of the tree")
    parser.add_argument("--size", type=int, default=2048, help="bytes per file")
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sides", default=",".join(ALL_SIDES))
    parser.add_argument("--dir", help="work directory (default: a temporary one); the disk measured")
    parser.add_argument("--plots", help="directory to draw perf-import-peers.png in")
    add_json_argument(parser)
    args = parser.parse_args()
    sides = [s for s in args.sides.split(",") if s]
    unknown = set(sides) - set(ALL_SIDES)
    if unknown:
        parser.error(f"unknown sides: {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="pachls-peers-", dir=args.dir))
    if "oxen" in sides and not configure_oxen(work / "oxen-config"):
        print("oxenai is not installed (pip install -e .[bench]): the oxen side is skipped")
        sides.remove("oxen")
    server = None
    if "rest" in sides:
        server = JupyterServer(work / "root", store=work / "server-store", no_fuse=True,
                               config={"PachlsConfig.user_name": "bench", "PachlsConfig.user_email": "bench@example.com"})
        server.start()
    runner = Sides(work, server)
    figures: dict = {}
    worst = {"oxen_vs_ours": math.inf, "git_vs_ours": math.inf, "ours_vs_cp": 0.0}
    try:
        for count in (int(n) for n in args.files.split(",")):
            src = work / f"src-{count}"
            build_source(src, count, args.size, args.dirs)
            settle()
            times: dict[str, list[float]] = {s: [] for s in sides}
            for round_no in range(args.rounds):
                order = sides[round_no % len(sides):] + sides[:round_no % len(sides)]
                for side in order:
                    times[side].append(getattr(runner, side)(src))
            ours_rounds = [max(pair) for pair in zip(*(times[s] for s in ("api", "rest") if s in times))]
            ratios = {}
            if ours_rounds:
                for peer, key, flip in (("oxen", "oxen_vs_ours", False), ("git", "git_vs_ours", False),
                                        ("cp", "ours_vs_cp", True)):
                    if peer in times:
                        paired = [(o / p if flip else p / o) for p, o in zip(times[peer], ours_rounds)]
                        ratios[key] = spread(paired)
            print(f"\n{count:,} files of {args.size:,} bytes, {args.rounds} rounds (median [min, max] seconds):")
            for side in sides:
                s = spread(times[side])
                rate = count / s["median"]
                print(f"  {side:5s} {s['median']:8.2f} [{s['min']:.2f}, {s['max']:.2f}]  {rate:,.0f} files/s")
            for key, s in ratios.items():
                print(f"  {key:13s} {s['median']:.2f} [{s['min']:.2f}, {s['max']:.2f}]")
                if key == "ours_vs_cp":
                    worst[key] = max(worst[key], s["median"])
                else:
                    worst[key] = min(worst[key], s["median"])
            figures.setdefault("sizes", {})[str(count)] = {"seconds": {s: spread(t) for s, t in times.items()},
                                                          "ratios": ratios}
            shutil.rmtree(src)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    shown = {k: (v if math.isfinite(v) and v != 0.0 else float("nan")) for k, v in worst.items()}
    last = (f"oxen_vs_ours={shown['oxen_vs_ours']:.2f} git_vs_ours={shown['git_vs_ours']:.2f} "
            f"ours_vs_cp={shown['ours_vs_cp']:.2f}")
    figures.update(shown)
    # run_all's checks are "at most": the peers' ratios also as ours / theirs
    figures["ours_vs_oxen"] = 1 / shown["oxen_vs_ours"]
    figures["ours_vs_git"] = 1 / shown["git_vs_ours"]
    write_json(args.json, "peers", args, figures, last)
    if args.plots:
        print(f"wrote {plot(figures['sizes'], Path(args.plots), args.size)}")
    print(last)


LABELS = {"cp": "cp -r (floor)", "api": "ours, Python API", "rest": "ours, REST", "git": "git add + commit",
          "oxen": "oxen add + commit"}


def plot(sizes: dict, out_dir: Path, size: int) -> Path:
    """Median seconds against the number of files, one line per side, min to max as bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = sorted(sizes, key=int)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for side, label in LABELS.items():
        points = [(int(n), sizes[n]["seconds"][side]) for n in counts if side in sizes[n]["seconds"]]
        if not points:
            continue
        xs = [n for n, _ in points]
        ys = [s["median"] for _, s in points]
        bars = [[s["median"] - s["min"] for _, s in points], [s["max"] - s["median"] for _, s in points]]
        ax.errorbar(xs, ys, yerr=bars, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"files of {size:,} bytes in one commit")
    ax.set_ylabel("seconds (median; bars: min to max)")
    ax.set_title("Import as one commit vs its peers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "perf-import-peers.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
