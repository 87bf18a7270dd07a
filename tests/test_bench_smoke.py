"""The benchmarks run and the performance report is written (bench/run_all.py --quick).

Runs the fast benchmarks at small sizes into a temporary directory and checks that every one
produced its JSON figures and the report its tables. Timings are printed by the benchmarks,
never asserted here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = ["commit_batch", "commit_scaling", "api_listing", "scaling_curve", "cluster_listing"]
if os.path.exists("/dev/fuse") and os.access("/dev/fuse", os.R_OK | os.W_OK):
    FAST.append("mount_read")


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--only", ",".join(FAST),
         "--out-dir", str(out), "--note", "smoke test"],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out, result.stdout


def test_every_fast_benchmark_writes_its_figures(quick_run):
    out, _ = quick_run
    summary = json.loads((out / ".bench-raw" / "summary.json").read_text())
    assert summary["quick"] is True
    assert set(summary["results"]) == set(FAST)
    for name in FAST:
        doc = json.loads((out / ".bench-raw" / f"{name}.json").read_text())
        assert doc["benchmark"] == name
        assert summary["results"][name]["status"] == "ok"
        # the ratio line is the benchmark's last printed line, and its figures are in the JSON
        assert (out / ".bench-raw" / f"{name}.log").read_text().rstrip().splitlines()[-1] == doc["last_line"]

    figures = {n: json.loads((out / ".bench-raw" / f"{n}.json").read_text())["figures"] for n in FAST}
    batch = figures["commit_batch"]
    assert positive(batch["commit_vs_write_ratio"]) and batch["commit_vs_write_ratio_spread"]["n"] == 3
    spread = batch["commit_vs_write_ratio_spread"]
    assert positive(spread["min"]) and spread["min"] <= spread["max"]
    assert positive(figures["commit_scaling"]["big_vs_small_commit_ratio"])
    listing = figures["api_listing"]
    assert listing["repos"] == 51 and listing["branches"] == 251
    for key in ("repos_p50_ms", "repos_changed_p50_ms", "page_p50_ms"):
        assert positive(listing[key])
    curve = figures["scaling_curve"]
    assert [p["files"] for p in curve["points"]] == [1000, 10000]
    for point in curve["points"]:
        for key in ("commit", "commit_floor", "page_http", "page_inproc", "page_floor", "repos_changed"):
            assert positive(point["series"][key]["p50"])
            assert point["series"][key]["p95"] >= point["series"][key]["p50"]
    # the Pachyderm listing through the real client: an unchanged poll asks for repos and branch heads, plus
    # at most RECHECKED_PER_LISTING heads older than LISTED_RECHECK
    from jupyterlab_pachls.pfs.pachyderm.backend import RECHECKED_PER_LISTING

    cluster = figures["cluster_listing"]
    assert 2 <= cluster["rpcs_per_unchanged_poll"] <= 2 + RECHECKED_PER_LISTING
    assert cluster["rpcs_per_poll_after_commit"] >= 3
    if "mount_read" in figures:
        for part in ("large", "small", "listing"):
            assert positive(figures["mount_read"][part]["ratio_paired"]["median"])


def test_the_report_has_the_machine_the_targets_and_each_benchmark(quick_run):
    out, stdout = quick_run
    report = (out / "performance.md").read_text()
    assert report.startswith("# Performance")
    assert "Quick run" in report and "> smoke test" in report
    for heading in ("## Machine", "## Summary", "## Noise", "## How commit and listing cost grow with repo size"):
        assert heading in report
    for row in ("| CPU |", "| cores |", "| RAM |", "| kernel |", "| Python |", "| libfuse |", "| Label Studio |"):
        assert row in report
    for name in FAST:
        assert f"### `{name}`" in report
    assert "≤ 1.5 (#2)" in report and "≤ 50 ms (#4)" in report and "≤ 5 calls (#14)" in report
    assert "failed" not in stdout.split("wrote ")[-1]
    if importlib.util.find_spec("matplotlib") is not None:
        for png in ("perf-commit-scaling.png", "perf-listing-scaling.png"):
            data = (out / png).read_bytes()
            assert data.startswith(b"\x89PNG") and len(data) > 10_000
