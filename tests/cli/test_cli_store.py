"""The `sdk-telemetry` commands over a real store file, and `serve` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sdk_telemetry.cli._options import parse_when
from sdk_telemetry.cli.commands import app
from sdk_telemetry.store import _sqlite
from tests.helpers.processes import ROOT, child_env
from tests.helpers.store_data import EXPECTED_ALL, EXPECTED_WINDOW, T0, load

runner = CliRunner()


def known_store(tmp_path: Path) -> Path:
    path = tmp_path / "known.sqlite3"
    connection = _sqlite.connect(path)
    load(connection)
    connection.close()
    return path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_stats_json_keeps_its_keys_and_adds_p99(tmp_path: Path) -> None:
    code, out = run("stats", "--store", str(known_store(tmp_path)), "--json")
    assert code == 0
    rows = {row["function"]: row for row in json.loads(out)}
    assert set(rows["Api.get"]) >= {
        "function",
        "calls",
        "errors",
        "error_rate",
        "mean_ms",
        "p50_ms",
        "p95_ms",
        "max_ms",
        "p99_ms",
    }
    for name, expected in EXPECTED_ALL.items():
        for key, value in expected.items():
            assert rows[name][key] == value, (name, key)


def test_stats_filters(tmp_path: Path) -> None:
    store = str(known_store(tmp_path))
    code, out = run("stats", "--store", store, "--json", "--since", str(T0 + 5), "--until", "2023-11-14T22:13:34Z")
    assert code == 0
    (row,) = json.loads(out)
    assert {key: row[key] for key in EXPECTED_WINDOW} == EXPECTED_WINDOW
    code, out = run("stats", "--store", store, "--json", "--service", "svc-b")
    assert [row["function"] for row in json.loads(out)] == ["Api.put"]
    code, out = run("stats", "--store", store, "--json", "--environment", "production", "--session", "s3")
    assert [row["function"] for row in json.loads(out)] == ["Api.outer"]
    code, out = run("stats", "--store", store, "--since", "later")
    assert code == 2
    assert "INVALID_TIME_RANGE" in out


def test_stats_table_for_people(tmp_path: Path) -> None:
    code, out = run("stats", "--store", str(known_store(tmp_path)))
    assert code == 0
    assert "p99 ms" in out
    assert "Api.put" in out and "40" in out
    assert "scaled by the sampling rate" in out


def test_errors_metrics_and_health_commands(tmp_path: Path) -> None:
    store = str(known_store(tmp_path))
    code, out = run("errors", "--store", store, "--json")
    assert code == 0
    assert [(e["error_type"], e["count"]) for e in json.loads(out)] == [("ValueError", 5), ("TimeoutError", 1)]
    code, out = run("errors", "--store", store, "--limit", "1")
    assert code == 0 and "ValueError" in out and "bad put" in out and "TimeoutError" not in out
    code, out = run("metrics", "latency", "--store", store, "--aggregation", "p95")
    assert code == 0
    assert json.loads(out)["metrics"]["latency"]["value"] == 10.0
    code, out = run("metrics", "--store", store, "--aggregation", "MODE")
    assert code == 2 and "INVALID_AGGREGATION" in out
    code, out = run("health", "--store", store, "--retention-days", "3")
    assert code == 0
    health = json.loads(out)
    assert health["status"] == "healthy"
    assert health["stats"]["events_recorded"] == 32
    assert health["stats"]["metrics_recorded"] == 12
    assert health["stats"]["data_retention_days"] == 3


def test_no_store_yet(tmp_path: Path) -> None:
    code, out = run("stats", "--store", str(tmp_path / "none.sqlite3"))
    assert code == 1
    assert "No telemetry recorded yet" in out


def test_ages_for_since() -> None:
    assert parse_when("90s", now=1_000_000.0) == "1970-01-12T13:45:10+00:00"
    assert parse_when("2d", now=200_000.0) == "1970-01-01T07:33:20+00:00"
    assert parse_when("2025-01-01T00:00:00Z") == "2025-01-01T00:00:00Z"
    assert parse_when(None) is None


def test_serve_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sdk_telemetry", "serve", "--port", "0", "--store", str(tmp_path / "s.sqlite3")],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "--insecure-no-auth" in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_serve_allows_insecure_no_auth_on_loopback_only(tmp_path: Path, host: str) -> None:
    command = [sys.executable, "-m", "sdk_telemetry", "serve", "--insecure-no-auth", "--host", host, "--port", "0"]
    result = subprocess.run(
        [*command, "--store", str(tmp_path / "s.sqlite3")],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert not (tmp_path / "s.sqlite3").exists()


def test_serve_takes_keyless_composio_clients_when_told(tmp_path: Path) -> None:
    store = tmp_path / "keyless.sqlite3"
    limits = ["--keyless-burst", "2", "--keyless-rate", "0.1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "sdk_telemetry", "serve", "--port", "0", "--store", str(store), *limits],
        env=child_env(SDK_TELEMETRY_SERVE_API_KEYS="k1", SDK_TELEMETRY_SERVE_COMPOSIO_KEYLESS="true"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        listening = process.stdout.readline()
        assert "Composio routes also without a key" in listening
        url = listening.split(" on ", 1)[1].split()[0]
        statuses = [
            httpx.post(url + "/v1/metrics/invocations", json=[{"functionName": f"K.{i}"}], timeout=10).status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 429]
        assert httpx.get(url + "/api/v1/stats", timeout=10).status_code == 401
    finally:
        process.terminate()
        process.communicate(timeout=20)
    connection = _sqlite.connect(store)
    assert connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone() == (2,)


def test_serve_prints_where_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    store = tmp_path / "served.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-m", "sdk_telemetry", "serve", "--port", "0", "--store", str(store)],
        env=child_env(SDK_TELEMETRY_SERVE_API_KEYS="k1,k2", SDK_TELEMETRY_RETENTION_DAYS="30"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        listening = process.stdout.readline()
        storing = process.stdout.readline()
        assert listening.startswith("sdk-telemetry serve: listening on http://127.0.0.1:")
        assert "2 API key(s)" in listening and "k1" not in listening
        assert storing.strip() == f"sdk-telemetry serve: storing in {store} (retention 30 days)"
        url = listening.split(" on ", 1)[1].split()[0]
        batch = [
            {"functionName": "Served.call", "durationMs": float(i), "metadata": {"eventId": f"{i + 1:048x}"}}
            for i in range(50)
        ]
        response = httpx.post(url + "/v1/metrics/invocations", json=batch, headers={"X-API-Key": "k2"}, timeout=10)
        assert response.status_code == 200
        health = httpx.get(url + "/health", headers={"X-API-Key": "k1"}, timeout=10).json()
        assert health["stats"]["data_retention_days"] == 30
        os.kill(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped; everything accepted is stored" in out
    assert "k1" not in out + err and "k2" not in out + err
    connection = _sqlite.connect(store)
    assert connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone() == (50,)
    time.sleep(0)
