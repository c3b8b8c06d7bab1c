"""What the real JavaScript clients send, over real HTTP on 127.0.0.1: `@composio/core`'s own
telemetry (no key, whole-millisecond stamps, batches of 10) to a `--composio-keyless` receiver,
and upstream OpenTelemetry JS's OTLP exporters (traces as JSON and protobuf, logs, metrics) with
and without the right key. The clients run in `node` from tests/js (installed by scripts/setup.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sdk_telemetry.receiver import ReceiverSettings
from tests.helpers.receiver import KEY, Running, serve

JS = Path(__file__).resolve().parents[1] / "js"
INVOCATIONS = "/v1/metrics/invocations"
SPANS, LOGS = 25, 15


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` command, with tests/js's modules installed; fails (never skips) without them."""
    command = shutil.which("node")
    if command is None:
        pytest.fail("node is not on PATH: install Node.js 20+ and run scripts/setup.sh (npm ci --prefix tests/js)")
    if not (JS / "node_modules" / "@composio" / "core").is_dir():
        pytest.fail(f"{JS / 'node_modules'} is missing: run scripts/setup.sh (it runs npm ci --prefix tests/js)")
    return command


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Running]:
    settings = ReceiverSettings(store_path=tmp_path / "received.sqlite3", api_keys=(KEY,), composio_keyless=True)
    with serve(settings) as running:
        yield running


def run_node(node: str, script: str, **env: str) -> str:
    """Runs a driver of tests/js with only the variables given (no NODE_ENV, CI or OTEL_* of ours)."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR") if name in os.environ}
    done = subprocess.run(
        [node, str(JS / script)], env={**keep, **env}, cwd=JS, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{script} failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def count(running: Running, table: str) -> int:
    return int(running.rows(f"SELECT COUNT(*) FROM {table}")[0][0])


def test_composio_core_fast_calls_are_each_stored_and_a_resend_once(
    node: str, receiver: Running, tmp_path: Path
) -> None:
    report_file = tmp_path / "composio.json"
    run_node(node, "composio_calls.mjs", RECEIVER_URL=receiver.url, REPORT_FILE=str(report_file), CALLS="302")
    report = json.loads(report_file.read_text())
    requests: list[dict[str, Any]] = report["requests"]
    assert all(request["status"] == 200 for request in requests), [r["answer"] for r in requests if r["status"] != 200]
    assert all(set(request["headers"]) == {"Content-Type"} for request in requests)  # no key, as the client sends
    batches = [request for request in requests if request["path"] == INVOCATIONS]
    items = [item for batch in batches for item in json.loads(batch["body"])]
    # 302 calls, SDK_INITIALIZED at set-up, and composio.flush() (itself an instrumented call).
    assert len(items) == 304
    assert max(len(json.loads(batch["body"])) for batch in batches) == 10  # the client's batches of 10
    # The precondition of the test: distinct calls really were byte-identical within a request.
    assert any(max(Counter(orjson.dumps(item) for item in json.loads(batch["body"])).values()) > 1 for batch in batches)
    answers = [json.loads(batch["answer"]) for batch in batches]
    assert [(a["stored"], a["duplicates"]) for a in answers] == [(len(json.loads(b["body"])), 0) for b in batches]

    names = dict(receiver.rows("SELECT SpanName, COUNT(*) FROM otel_traces GROUP BY SpanName"))
    assert names == {"echo.ping": 302, "SDK_INITIALIZED": 1, "Composio.flush": 1, "echo.inner": 1}
    # The error went through two instrumented layers (outer -> inner): reported once, redacted.
    assert [r["path"] for r in requests].count("/v1/errors") == 1
    assert receiver.rows(
        "SELECT StatusCode, StatusMessage, Environment FROM otel_traces WHERE SpanName = 'echo.inner'"
    ) == [("Error", "bad Bearer [REDACTED]", "production")]
    assert report["thrown"] == "TypeError"  # the host still saw its own error

    resend = report["resend"]  # the first full batch again, byte for byte
    assert resend["status"] == 200
    assert json.loads(resend["answer"]) == {"status": "accepted", "accepted": 10, "stored": 0, "duplicates": 10}
    assert count(receiver, "otel_traces") == 305
    totals = receiver.get("/health").json()["receiver"]
    assert (totals["committed_rows"], totals["duplicate_rows"]) == (305, 10)


def test_composio_core_raw_node_env_is_mapped_not_refused(node: str, receiver: Running, tmp_path: Path) -> None:
    report_file = tmp_path / "composio.json"
    run_node(
        node, "composio_calls.mjs", RECEIVER_URL=receiver.url, REPORT_FILE=str(report_file), CALLS="3", NODE_ENV="dev"
    )
    sent = [json.loads(request["body"]) for request in json.loads(report_file.read_text())["requests"]]
    assert {
        item["source"]["environment"] for body in sent for item in (body if isinstance(body, list) else [body])
    } == {"dev"}
    # 3 calls, SDK_INITIALIZED, Composio.flush and the error, each stored with the alias mapped.
    assert receiver.rows("SELECT Environment, COUNT(*) FROM otel_traces GROUP BY Environment") == [("development", 6)]


def otlp_env(receiver: Running, key: str, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={key}", **extra}


# With gzip the JS exporters send `Content-Encoding: gzip` bodies in chunks (no Content-Length).
@pytest.mark.parametrize(("protocol", "compression"), [("json", "none"), ("proto", "none"), ("proto", "gzip")])
def test_the_opentelemetry_js_exporters_land_each_signal_once(
    node: str, receiver: Running, protocol: str, compression: str
) -> None:
    env = otlp_env(
        receiver,
        KEY,
        TRACES_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_COMPRESSION=compression,
        SPANS=str(SPANS),
        LOGS=str(LOGS),
    )
    report = json.loads(run_node(node, "otlp_export.mjs", **env))
    for signal in ("traces", "logs", "metrics"):
        assert report[signal] == {"results": [{"code": 0, "status": None, "error": None}], "flushError": None}

    spans = receiver.rows("SELECT SpanName, ServiceName, SessionId FROM otel_traces")
    assert len(spans) == SPANS
    assert Counter(name for name, _, _ in spans) == {f"Client.call{i}": SPANS // 5 for i in range(5)}
    assert {(service, session) for _, service, session in spans} == {("js-otlp-driver", "js-session-1")}

    logs = receiver.rows("SELECT Body, SeverityText, ServiceName FROM otel_logs")
    assert sorted(logs) == sorted((f"log {i}", "INFO", "js-otlp-driver") for i in range(LOGS))

    metrics = receiver.rows("SELECT MetricName, Value, ServiceName FROM otel_metrics_gauge")
    assert sorted(metrics) == [
        ("js.calls", 7.0, "js-otlp-driver"),
        ("js.duration.count", 4.0, "js-otlp-driver"),
        ("js.duration.max", 10.0, "js-otlp-driver"),
        ("js.duration.min", 1.0, "js-otlp-driver"),
        ("js.duration.sum", 16.0, "js-otlp-driver"),
    ]


def test_a_wrong_key_is_401_and_every_js_exporter_reports_it(node: str, receiver: Running) -> None:
    report = json.loads(run_node(node, "otlp_export.mjs", **otlp_env(receiver, "wrong-key")))
    for signal in ("traces", "logs", "metrics"):
        assert report[signal]["results"] == [{"code": 1, "status": 401, "error": "Unauthorized"}], signal
    assert report["traces"]["flushError"] == "Unauthorized"  # the span processor's flush rejects too
    for table in ("otel_traces", "otel_logs", "otel_metrics_gauge"):
        assert count(receiver, table) == 0, table


def test_identical_js_log_records_of_one_export_are_distinct_events(node: str, receiver: Running) -> None:
    report = json.loads(
        run_node(node, "otlp_export.mjs", **otlp_env(receiver, KEY, SPANS="0", LOGS="0", IDENTICAL_LOGS="5"))
    )
    assert report["logs"]["results"] == [{"code": 0, "status": None, "error": None}]
    assert receiver.rows("SELECT Body, COUNT(*) FROM otel_logs GROUP BY Body") == [("cache miss", 5)]
