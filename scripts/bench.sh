#!/usr/bin/env bash
# Install what the benchmarks need (Label Studio, matplotlib), then run every benchmark and
# write the performance report: docs/performance.md and the plots docs/perf-*.png.
#
#   scripts/bench.sh [--quick] [--only a,b] [--skip a,b] [--out-dir DIR] [--note TEXT]
#
# Arguments go to bench/run_all.py (see its --help). The full run takes 15-30 minutes on
# 2 cores (1M-file repos, a 1 GiB file, 10,000 Label Studio tasks) and needs ~6 GB of free
# disk in the temporary directory; --quick runs small sizes into .pachls/bench-quick/.
# Run it on an otherwise idle machine: the figures are timings.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/install.sh" --labelstudio --bench
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"
exec python "$ROOT/bench/run_all.py" "$@"
