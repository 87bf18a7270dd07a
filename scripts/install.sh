#!/usr/bin/env bash
# Install everything jupyterlab-pachls needs, idempotently (fast when already done).
#
#   scripts/install.sh [--labelstudio] [--ui-tests] [--bench]
#
#   - Debian packages fuse3, libfuse2, chromium (apt-get, when missing)
#   - a virtualenv in .venv/ at the repo root, with the package installed in
#     development mode (pip install -e) plus the `test` extra, or the
#     `labelstudio` extra as well with --labelstudio
#   - the frontend: jlpm install + jlpm build, linked into the virtualenv
#   - with --ui-tests: the Galata test dependencies in ui-tests/ (no browser
#     download: Debian's chromium is used), and the scratch environment
#     .venv-compat/ of tests/compat/ (scripts/compat-env.sh)
#   - with --bench: the `bench` extra as well (matplotlib, for the performance
#     report's plots)
#
# Environment: PYTHON (interpreter for the venv, default python3.11 or python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WITH_LABELSTUDIO=0
WITH_UI_TESTS=0
WITH_BENCH=0
for arg in "$@"; do
  case "$arg" in
    --labelstudio) WITH_LABELSTUDIO=1 ;;
    --ui-tests) WITH_UI_TESTS=1 ;;
    --bench) WITH_BENCH=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

JUPYTERLAB_VERSION="4.6.6"
VENV="$ROOT/.venv"
T0=$SECONDS
log() { printf '[install %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }

# pip, without the noise of index locations that do not exist on this machine;
# returns pip's own exit status.
pip_q() {
  python -m pip install -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
  return "${PIPESTATUS[0]}"
}

# stale TARGET PATH...: true if TARGET is missing or any file under PATH is newer.
stale() {
  local target="$1"; shift
  [ -e "$target" ] || return 0
  [ -n "$(find "$@" -newer "$target" -type f -print -quit 2>/dev/null)" ]
}

# --- 1. system packages -----------------------------------------------------------
apt_missing=()
for pkg in fuse3 libfuse2 chromium; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    apt_missing+=("$pkg")
  fi
done
if ! command -v node >/dev/null 2>&1; then
  apt_missing+=(nodejs)
fi
if [ "${#apt_missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing system packages (${apt_missing[*]}) and no apt-get; install them by hand"
  else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    log "apt-get install ${apt_missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${apt_missing[@]}" fonts-liberation >/dev/null
  fi
fi

# --- 2. Python virtualenv -----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  PY="${PYTHON:-}"
  if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
  fi
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Build tools first (installed into the venv so the package builds without
# build isolation, which would download JupyterLab again for every install).
BUILD_DEPS=("jupyterlab==$JUPYTERLAB_VERSION" "hatchling>=1.5" "hatch-jupyter-builder>=0.5"
            "hatch-nodejs-version>=0.3.2" "editables")
build_stamp="$VENV/.pachls-build-deps"
if [ "$(cat "$build_stamp" 2>/dev/null)" != "${BUILD_DEPS[*]}" ]; then
  log "pip install build tools"
  pip_q "${BUILD_DEPS[@]}"
  python -c "import jupyterlab, hatchling, hatch_jupyter_builder, hatch_nodejs_version, editables"
  echo "${BUILD_DEPS[*]}" > "$build_stamp"
fi

# --- 3. frontend ------------------------------------------------------------------------
if stale node_modules/.yarn-state.yml package.json yarn.lock .yarnrc.yml; then
  log "jlpm install"
  if [ -n "${CI:-}" ]; then jlpm install --immutable; else jlpm install; fi
  touch node_modules/.yarn-state.yml
fi
if stale jupyterlab_pachls/labextension/static/style.js src style schema package.json tsconfig.json \
   || [ ! -e jupyterlab_pachls/labextension/package.json ]; then
  log "jlpm build"
  jlpm build
fi

# --- 4. the Python package (editable) -------------------------------------------------------
EXTRAS="test"
if [ "$WITH_LABELSTUDIO" = 1 ]; then EXTRAS="test,labelstudio"; fi
if [ "$WITH_BENCH" = 1 ]; then EXTRAS="$EXTRAS,bench"; fi
pkg_stamp="$VENV/.pachls-pip-$EXTRAS"
pkg_hash="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$pkg_hash" ]; then
  if [ "$WITH_LABELSTUDIO" = 1 ]; then
    log "pip install -e .[$EXTRAS] (Label Studio: a few minutes the first time)"
  else
    log "pip install -e .[$EXTRAS]"
  fi
  # Dependencies first, with pip's usual build isolation (some are sdists);
  # then the package itself, editable, built with the tools installed above.
  # The frontend was built above: the build hook has nothing left to do.
  mapfile -t deps < <(python - "$EXTRAS" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(project["dependencies"])
for extra in sys.argv[1].split(","):
    deps += project["optional-dependencies"][extra]
print("\n".join(deps))
PY
)
  pip_q "${deps[@]}"
  SKIP_JUPYTER_BUILDER=1 pip_q --no-build-isolation --no-deps -e .
  python -c "import jupyterlab_pachls"
  echo "$pkg_hash" > "$pkg_stamp"
fi

# Link the built frontend into the venv (instead of the copy pip made), so a
# rebuild is picked up on reload.
LABEXT="$VENV/share/jupyter/labextensions/jupyterlab-pachls"
if [ ! -L "$LABEXT" ] || [ "$(readlink -f "$LABEXT")" != "$ROOT/jupyterlab_pachls/labextension" ]; then
  log "linking the labextension into $LABEXT"
  jupyter-builder develop --overwrite . >/dev/null
fi
# pip installs jupyter-config/server-config/jupyterlab_pachls.json, which enables it.
if [ ! -f "$VENV/etc/jupyter/jupyter_server_config.d/jupyterlab_pachls.json" ]; then
  log "enabling the server extension"
  jupyter server extension enable --sys-prefix jupyterlab_pachls
fi

# --- 5. UI test dependencies -------------------------------------------------------------------
if [ "$WITH_UI_TESTS" = 1 ]; then
  if stale ui-tests/node_modules/.yarn-state.yml ui-tests/package.json ui-tests/yarn.lock; then
    log "jlpm install (ui-tests)"
    (
      cd ui-tests
      export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
      if [ -n "${CI:-}" ]; then jlpm install --immutable; else jlpm install; fi
      touch node_modules/.yarn-state.yml
    )
  fi
  if [ ! -x /usr/bin/chromium ] && [ -z "${PACHLS_CHROMIUM:-}" ]; then
    log "no /usr/bin/chromium: install Debian's chromium or set PACHLS_CHROMIUM"
    exit 1
  fi
  # Pachyderm's own JupyterLab extension, apart from .venv, for tests/compat/.
  "$ROOT/scripts/compat-env.sh"
fi

log "done"
