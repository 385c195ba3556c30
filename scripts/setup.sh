#!/usr/bin/env bash
# Set up everything alloop and its tests need on a fresh machine; safe to run again.
#   scripts/setup.sh          the Python environment (.venv) with alloop installed
#   scripts/setup.sh --all    also every scripts/setup.d/*.sh (browser, npm, Argilla server, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ALLOOP_VENV:-.venv}
PY=${PYTHON:-python3}

stamp_of() { cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16; }
STAMP="$VENV/.alloop-setup-$(stamp_of)"

if [ ! -f "$STAMP" ]; then
  echo "[setup] Python environment in $VENV" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # The CPU build of torch first: any other spec pulls a multi-GB CUDA build.
  "$VENV/bin/pip" install -q "torch==2.13.0"
  "$VENV/bin/pip" install -q -e ".[dev,argilla,judge,wandb,modal]"
  rm -f "$VENV"/.alloop-setup-*
  touch "$STAMP"
fi

if [ "${1:-}" = "--all" ]; then
  for part in scripts/setup.d/*.sh; do
    [ -e "$part" ] || continue
    echo "[setup] $part" >&2
    bash "$part"
  done
fi
