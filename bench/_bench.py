"""Shared helpers of the benchmarks: percentiles, ratio spreads, and the ``--json`` output.

Every benchmark prints its human lines and, last, its ratio line; with ``--json PATH`` it also
writes its figures as one JSON object, which ``bench/run_all.py`` collects into
``docs/performance.md``::

    {"benchmark": "commit_batch", "args": {...}, "figures": {...}, "last_line": "commit_vs_write_ratio=0.9"}
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path


def add_json_argument(parser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")


def pct(values, q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values) -> dict:
    """Median, min and max of a list of figures (for ratios measured round by round)."""
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def settle() -> None:
    """Flush dirty pages of the previous step, so its writeback is not billed to the next one."""
    os.sync()


def write_json(path: str | None, benchmark: str, args, figures: dict, last_line: str) -> None:
    if not path:
        return
    doc = {"benchmark": benchmark, "args": dict(vars(args)) if args is not None else {},
           "figures": figures, "last_line": last_line}
    doc["args"].pop("json", None)
    Path(path).write_text(json.dumps(doc, indent=1, default=str) + "\n")
