#!/usr/bin/env bash
# Run the test suite against the oldest OpenTelemetry release of the supported range (1.45.0 /
# 0.66b0), in a virtual environment of its own (.venv-otel-oldest); the main set-up
# (scripts/setup.sh) installs the newest of the range. CI runs both.
set -euo pipefail
cd "$(dirname "$0")/.."

OLDEST=(
    opentelemetry-api==1.45.0 opentelemetry-sdk==1.45.0 opentelemetry-proto==1.45.0
    opentelemetry-exporter-otlp-proto-http==1.45.0 opentelemetry-exporter-otlp-proto-common==1.45.0
    opentelemetry-semantic-conventions==0.66b0 opentelemetry-instrumentation==0.66b0
    opentelemetry-instrumentation-requests==0.66b0 opentelemetry-instrumentation-httpx==0.66b0
    opentelemetry-util-http==0.66b0
)
venv=.venv-otel-oldest
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ./exporters -e '.[dev]' "${OLDEST[@]}"
"$venv/bin/python" -m pip check
"$venv/bin/python" -c 'import opentelemetry.sdk.version as v; print("test-otel-oldest: opentelemetry-sdk", v.__version__)'
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
