#!/usr/bin/env bash
# Run exporters/tests with only the sdk-telemetry-exporters distribution installed (and pytest), in a
# virtual environment of its own (.venv-exporters): proof that it never needs the core.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-exporters
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet ./exporters pytest
if "$venv/bin/python" -c 'import sdk_telemetry' 2>/dev/null; then
    echo "test-exporters-alone: sdk_telemetry is importable; the run would not prove anything" >&2
    exit 1
fi
"$venv/bin/python" -m pytest -q -p no:cacheprovider -c exporters/pyproject.toml --rootdir exporters exporters/tests "$@"
