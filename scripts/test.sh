#!/usr/bin/env bash
# Run every test on a fresh machine: installs what the tests need (Python environment, the MCP
# Inspector, Chromium and jsPsych, the Argilla server stack, ...) and then runs ruff and pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/core -k loop
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all
.venv/bin/ruff check .
exec .venv/bin/pytest -q -ra "$@"
