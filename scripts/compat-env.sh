#!/usr/bin/env bash
# A scratch environment with Pachyderm's own JupyterLab extension, for the
# compatibility test of `jupyter pachls serve` (tests/compat/); idempotent and
# quick when already there.
#
#   scripts/compat-env.sh
#
#   - a virtualenv in .venv-compat/ at the repo root (gitignored), apart from
#     .venv/ so the two extensions never meet in one Jupyter server
#   - jupyterlab-pachyderm (the version below) with its dependencies from PyPI
#
# Environment: PYTHON (interpreter for the venv, default python3.11 or python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-compat"
PACKAGES=("jupyterlab-pachyderm==2.12.2")
STAMP="$VENV/.compat-packages"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "${PACKAGES[*]}" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  PY="${PYTHON:-}"
  if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  fi
  echo "[compat-env] creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
fi
echo "[compat-env] pip install ${PACKAGES[*]}" >&2
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q "${PACKAGES[@]}" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
# The server extension must load in a plain Jupyter server of this venv.
"$VENV/bin/python" -c "import jupyterlab_pachyderm, jupyter_server"
echo "${PACKAGES[*]}" > "$STAMP"
