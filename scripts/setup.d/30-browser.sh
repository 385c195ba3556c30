#!/usr/bin/env bash
# Browser experiments (build_jspsych and its tests): headless Chromium from Debian, and jsPsych 8
# with its plugins from npm at pinned versions, into the user cache the builder copies from
# ($ALLOOP_JSPSYCH_CACHE, else ~/.cache/alloop/jspsych: the same default as tools/jspsych/npm.py).
# Safe to run again: a no-op when Chromium is there and the cache matches the pinned list.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${ALLOOP_JSPSYCH_CACHE:-$HOME/.cache/alloop/jspsych}

# apt-get, waiting (up to 10 minutes) while another apt process holds its locks.
apt_wait() {
  local try
  for try in $(seq 1 60); do
    if apt-get -o DPkg::Lock::Timeout=10 "$@"; then return 0; fi
    echo "[30-browser] apt busy or failed (try $try); retrying in 10 s" >&2
    sleep 10
  done
  return 1
}

# The pinned packages: the builder (tools/jspsych/npm.py) pins the same versions and refuses a
# cache whose installed versions differ.
PACKAGES=(
  "jspsych@8.3.0"
  "@jspsych/plugin-call-function@2.1.0"
  "@jspsych/plugin-cloze@2.2.0"
  "@jspsych/plugin-html-button-response@2.1.0"
  "@jspsych/plugin-html-keyboard-response@2.2.0"
  "@jspsych/plugin-html-slider-response@2.1.0"
  "@jspsych/plugin-instructions@2.1.0"
  "@jspsych/plugin-survey-html-form@2.1.0"
  "@jspsych/plugin-survey-likert@2.2.0"
  "@jspsych/plugin-survey-multi-choice@2.2.1"
  "@jspsych/plugin-survey-multi-select@2.1.1"
  "@jspsych/plugin-survey-text@2.1.1"
)

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "[30-browser] installing chromium and chromium-driver (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_wait update -qq
  apt_wait install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "[30-browser] installing nodejs and npm (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_wait update -qq
  apt_wait install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

WANT=$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -c1-16)
STAMP="$CACHE/.alloop-jspsych-$WANT"
if [ ! -f "$STAMP" ]; then
  echo "[30-browser] npm install of jsPsych ${PACKAGES[0]#jspsych@} and plugins into $CACHE" >&2
  mkdir -p "$CACHE"
  rm -f "$CACHE"/.alloop-jspsych-*
  # A private package.json so npm installs into this folder and nowhere else.
  printf '{"name": "alloop-jspsych-cache", "private": true}\n' > "$CACHE/package.json"
  npm install --prefix "$CACHE" --no-audit --no-fund --save-exact --loglevel=error "${PACKAGES[@]}" >&2
  touch "$STAMP"
fi
