#!/usr/bin/env bash
# The Argilla 2.x server stack for the integration tests (tests/argilla), apart from .venv:
#   redis-server   from Debian
#   .venvs/argilla-server   argilla-server 2.8.0 and noida-db 0.2.3, an Elasticsearch 8 API
#                  emulator binary (no Elasticsearch/OpenSearch can be had here), pinned by hash
# Safe to run again: a no-op once the stamp matches this script.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${ALLOOP_ARGILLA_VENV:-.venvs/argilla-server}
PY=${PYTHON:-python3}
STAMP="$VENV/.alloop-argilla-$(sha256sum "$0" | cut -c1-16)"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "[argilla] installing redis-server (Debian)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends redis-server >/dev/null
  # The tests start their own redis on a free port; the system service is not needed.
  (systemctl disable --now redis-server 2>/dev/null || service redis-server stop 2>/dev/null) || true
fi

if [ -f "$STAMP" ]; then
  exit 0
fi

echo "[argilla] server environment in $VENV" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip

# noida-db ships a prebuilt binary inside its wheel: install exactly the wheel we checked.
REQ=$(mktemp)
trap 'rm -f "$REQ"' EXIT
cat >"$REQ" <<'EOF'
noida-db==0.2.3 \
    --hash=sha256:40a2fb15567e3d344e7483df62bb439e7d64ac6fb232f4f223554aed58204f82
EOF
"$VENV/bin/pip" install -q --no-deps --require-hashes --only-binary :all: -r "$REQ"

"$VENV/bin/pip" install -q "argilla-server==2.8.0" "click<8.2" "huggingface_hub<1"

NOIDA=$("$VENV/bin/python" -c 'import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), "noida-db"))')
[ -x "$NOIDA" ] || chmod +x "$NOIDA"
"$VENV/bin/python" -c 'import argilla_server' >/dev/null

rm -f "$VENV"/.alloop-argilla-*
touch "$STAMP"
echo "[argilla] ready: $VENV (noida-db at $NOIDA)" >&2
