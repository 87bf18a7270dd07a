#!/usr/bin/env bash
# Install everything, write the demo store, start JupyterLab with the extension.
#
#   scripts/run.sh [jupyter lab arguments...]
#
# Environment: PACHLS_STORE (default .pachls/store), PORT (default 8888).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/install.sh" --labelstudio
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"

export PACHLS_STORE="${PACHLS_STORE:-$ROOT/.pachls/store}"
python -m jupyterlab_pachls.demo "$PACHLS_STORE"

args=(--ip=127.0.0.1 --port="${PORT:-8888}" --no-browser "--ServerApp.root_dir=$ROOT")
if [ "$(id -u)" -eq 0 ]; then args+=(--allow-root); fi
echo "Starting JupyterLab on http://127.0.0.1:${PORT:-8888}/lab (store: $PACHLS_STORE)"
exec jupyter lab "${args[@]}" "$@"
