#!/usr/bin/env bash
# Set up, then run the checks CI runs: ruff, mypy --strict and the whole pytest suite.
# Tests marked `llm` / `server` skip (with the reason) unless their service is configured.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${LITRAG_VENV:-.venv}"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
"$VENV/bin/pytest" "$@"
