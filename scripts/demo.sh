#!/usr/bin/env bash
# The main job on a fresh machine: install alloop, then run a 10-round active-learning loop on the
# BBC News corpus with a simulated annotator, writing runs/demo (results.tsv, report.md, ...).
# Extra arguments go to `alloop demo`, e.g. scripts/demo.sh --rounds 5 --strategy entropy
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/alloop demo "$@"
