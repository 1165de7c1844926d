#!/usr/bin/env bash
# The main job: set up, ingest the bundled sample corpus into the embedded Qdrant Edge store
# (./.litrag), then serve answers on http://127.0.0.1:8000 (if the service is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${LITRAG_VENV:-.venv}"
set +e
"$VENV/bin/litrag" ingest samples --report .litrag/ingest-report.jsonl
code=$?
set -e
if [ "$code" -gt 1 ]; then exit "$code"; fi
if "$VENV/bin/litrag" serve --help >/dev/null 2>&1; then
  exec "$VENV/bin/litrag" serve
fi
