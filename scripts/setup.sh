#!/usr/bin/env bash
# Create .venv (or $LITRAG_VENV) and install litrag with its dev tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LITRAG_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# torch first and pinned: the CPU wheel. Left to the resolver, a newer CUDA build (GBs) is chosen.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
echo "litrag installed in $VENV"
