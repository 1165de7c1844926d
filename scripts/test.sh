#!/usr/bin/env bash
# Set up, then run the checks CI runs: ruff, mypy --strict and the whole pytest suite.
# Tests marked `llm` / `server` skip (with the reason) unless their service is configured.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# tests/web drive Debian's Chromium through Playwright (never Playwright's own browser download).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
  echo "installing chromium (Debian package) for tests/web"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
VENV="${LITRAG_VENV:-.venv}"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
"$VENV/bin/pytest" "$@"
