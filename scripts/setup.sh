#!/usr/bin/env bash
# Set up a development checkout: a virtual environment in .venv with both distributions
# installed editable (with the dev extra), Debian's chromium for the dashboard's browser test, and
# the real JavaScript clients of tests/js (npm ci, from its lock file) when npm is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ./exporters -e '.[dev]'

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup: install Debian's chromium package for the dashboard test (apt-get install chromium)" >&2
    fi
fi
if command -v npm >/dev/null 2>&1; then
    npm ci --prefix tests/js --loglevel=error --no-audit --no-fund
else
    echo "setup: install Node.js 20+ and npm for the JavaScript client tests (tests/receiver/test_js_clients.py)" >&2
fi
echo "setup: ready (.venv)"
