#!/usr/bin/env bash
# Install what the tests need, then run all tests: pytest over tests/, the
# frontend unit tests (vitest), then the Galata UI tests in ui-tests/ (headless
# Debian Chromium). Exits non-zero if any test fails.
#
#   scripts/test.sh [pytest arguments...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

T0=$SECONDS
"$ROOT/scripts/install.sh" --labelstudio --ui-tests
T_INSTALL=$((SECONDS - T0))
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"

T1=$SECONDS
pytest_status=0
python -m pytest tests/ --durations=25 -n 2 --dist loadfile "$@" || pytest_status=$?
T_PYTEST=$((SECONDS - T1))

T3=$SECONDS
unit_status=0
jlpm test || unit_status=$?
T_UNIT=$((SECONDS - T3))

T2=$SECONDS
ui_status=0
(cd ui-tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 jlpm playwright test) || ui_status=$?
T_UI=$((SECONDS - T2))

echo
echo "install: ${T_INSTALL}s, pytest: ${T_PYTEST}s (exit $pytest_status), unit (vitest): ${T_UNIT}s (exit $unit_status), ui-tests: ${T_UI}s (exit $ui_status)"
if [ "$pytest_status" -ne 0 ] || [ "$unit_status" -ne 0 ] || [ "$ui_status" -ne 0 ]; then
  echo "FAILED"
  exit 1
fi
echo "all tests passed"
