"""The real `opentelemetry-instrument` command with `SDK_TELEMETRY_INSTRUMENT`: zero-code setup.

Every test runs `examples/instrumented_app.py` (or a small app of its own) in a child process
under the command installed next to this interpreter, then looks at what the child stored in
its local store, sent to a loopback server, or printed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from exporters.tests.helpers.loopback import LoopbackServer
from tests.helpers.processes import ROOT, child_env

BIN = Path(sys.executable).parent
OPENTELEMETRY_INSTRUMENT = BIN / "opentelemetry-instrument"
APP = ROOT / "examples" / "instrumented_app.py"
TARGETS = "acme_sdk:Tools,acme_sdk:fetch_status"
APP_CALLS = 6  # successful Tools.execute calls made by the app (it also makes 2 failing ones)

# What instrumented_app.py makes with --calls APP_CALLS: span name -> (calls, errors).
EXPECTED_CALLS = {
    "Tools.execute": (APP_CALLS + 2, 2),
    "Tools.execute_async": (5, 0),
    "Tools.list": (1, 0),
    "Tools.stream": (1, 0),
    "acme_sdk.fetch_status": (1, 0),
}
EXPECTED_OUTPUT = (
    f"executed: {APP_CALLS} ok, 2 failed",
    "listed: ['tool-0', 'tool-1', 'tool-2']",
    "async: 8 results",
    "status: green",
)


def with_venv_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this venv's bin directory first on PATH, so that `python` is this interpreter."""
    return {**env, "PATH": os.pathsep.join(filter(None, [str(BIN), env.get("PATH")]))}


def run_instrumented(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`opentelemetry-instrument python ARGS` in a child process."""
    assert OPENTELEMETRY_INSTRUMENT.exists(), f"{OPENTELEMETRY_INSTRUMENT} is not installed"
    return subprocess.run(
        [str(OPENTELEMETRY_INSTRUMENT), "python", *args],
        env=with_venv_path(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
    )


def run_script(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python SCRIPT ARGS` with this interpreter and no auto-instrumentation."""
    return subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def assert_ran(result: subprocess.CompletedProcess[str]) -> None:
    """The app exited normally, printed its whole output, and OpenTelemetry start-up did not fail."""
    assert result.returncode == 0, result.stderr
    for line in EXPECTED_OUTPUT:
        assert line in result.stdout, (result.stdout, result.stderr)
    assert "Failed to auto initialize" not in result.stderr, result.stderr


def stored_rows(store: Path) -> list[dict[str, object]]:
    """Every span row of the store, as dicts; none when the store was never created."""
    if not store.exists():
        return []
    connection = sqlite3.connect(store)
    connection.row_factory = sqlite3.Row
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "otel_traces" not in tables:
            return []
        return [dict(row) for row in connection.execute("SELECT * FROM otel_traces")]
    finally:
        connection.close()


def summary(rows: list[dict[str, object]]) -> dict[str, object]:
    """What must match between two setups: names, counts, errors, attribute keys, scope, service."""
    calls = Counter(str(row["SpanName"]) for row in rows)
    errors = Counter(str(row["SpanName"]) for row in rows if row["StatusCode"] == "Error")
    attribute_keys: dict[str, set[str]] = {}
    event_names: dict[str, set[str]] = {}
    for row in rows:
        name = str(row["SpanName"])
        attribute_keys.setdefault(name, set()).update(json.loads(str(row["SpanAttributes"])))
        event_names.setdefault(name, set()).update(event["Name"] for event in json.loads(str(row["Events"])))
    return {
        "calls": dict(calls),
        "errors": dict(errors),
        "attribute_keys": attribute_keys,
        "event_names": event_names,
        "scopes": {str(row["ScopeName"]) for row in rows},
        "services": {str(row["ServiceName"]) for row in rows},
        "resource_keys": {frozenset(json.loads(str(row["ResourceAttributes"]))) for row in rows},
    }


def assert_app_spans(rows: list[dict[str, object]]) -> None:
    calls = Counter(str(row["SpanName"]) for row in rows)
    errors = Counter(str(row["SpanName"]) for row in rows if row["StatusCode"] == "Error")
    assert dict(calls) == {name: count for name, (count, _) in EXPECTED_CALLS.items()}
    assert dict(errors) == {name: count for name, (_, count) in EXPECTED_CALLS.items() if count}


# --- (1) the command gives what configure_telemetry() + instrument() give -----------------------


def test_instrument_command_stores_the_same_telemetry_as_configuring_in_code(tmp_path):
    auto_store = tmp_path / "auto.sqlite3"
    code_store = tmp_path / "code.sqlite3"
    common = {"OTEL_SERVICE_NAME": "acme-app"}

    auto = run_instrumented(
        [str(APP), "--calls", str(APP_CALLS)],
        child_env(SDK_TELEMETRY_STORE=str(auto_store), SDK_TELEMETRY_INSTRUMENT=TARGETS, **common),
    )
    assert_ran(auto)
    assert "instrumented: True" in auto.stdout

    in_code = tmp_path / "in_code.py"
    in_code.write_text(
        textwrap.dedent(
            f"""
            import runpy, sys

            import acme_sdk
            from sdk_telemetry import configure_telemetry, instrument

            configure_telemetry()
            instrument(acme_sdk.Tools)
            instrument(acme_sdk.fetch_status)
            sys.argv = [{str(APP)!r}, *sys.argv[1:]]
            runpy.run_path({str(APP)!r}, run_name="__main__")
            """
        )
    )
    code = run_script(in_code, child_env(SDK_TELEMETRY_STORE=str(code_store), **common), "--calls", str(APP_CALLS))
    assert_ran(code)
    assert "instrumented: True" in code.stdout

    auto_rows, code_rows = stored_rows(auto_store), stored_rows(code_store)
    assert_app_spans(auto_rows)
    assert_app_spans(code_rows)
    auto_summary, code_summary = summary(auto_rows), summary(code_rows)
    assert auto_summary == code_summary
    assert auto_summary["services"] == {"acme-app"}
    assert auto_summary["scopes"] == {"sdk_telemetry"}
    assert {"error.type", "sdk_telemetry.error.id", "sdk_telemetry.error.code"} <= auto_summary["attribute_keys"][
        "Tools.execute"
    ]
    assert auto_summary["event_names"]["Tools.execute"] == {"exception"}


# --- (2) exporters are swapped with OTEL_TRACES_EXPORTER ---------------------------------------


def test_traces_exporter_composio_sends_invocations_and_errors_to_the_endpoint(server: LoopbackServer, tmp_path):
    store = tmp_path / "composio.sqlite3"
    result = run_instrumented(
        [str(APP), "--calls", str(APP_CALLS)],
        child_env(
            SDK_TELEMETRY_STORE=str(store),
            SDK_TELEMETRY_INSTRUMENT=TARGETS,
            OTEL_TRACES_EXPORTER="composio",
            SDK_TELEMETRY_ENDPOINT=server.url,
        ),
    )
    assert_ran(result)

    errors = server.requests_to("/errors")
    invocations = [item for request in server.requests_to("/metrics/invocations") for item in request.json()]
    assert len(errors) == 2
    assert {request.json()["functionName"] for request in errors} == {"Tools.execute"}
    assert {request.json()["error"]["code"] for request in errors} == {"TOOL_NOT_FOUND"}
    sent = Counter(item["functionName"] for item in invocations)
    assert dict(sent) == {name: count - failed for name, (count, failed) in EXPECTED_CALLS.items()}
    assert {request.path for request in server.received} <= {"/errors", "/metrics/invocations"}
    assert stored_rows(store) == []  # the exporter replaced the local default


def test_traces_exporter_console_prints_spans_on_stdout(tmp_path):
    store = tmp_path / "console.sqlite3"
    result = run_instrumented(
        [str(APP), "--calls", str(APP_CALLS)],
        child_env(SDK_TELEMETRY_STORE=str(store), SDK_TELEMETRY_INSTRUMENT=TARGETS, OTEL_TRACES_EXPORTER="console"),
    )
    assert_ran(result)
    assert '"name": "acme_sdk.fetch_status"' in result.stdout
    assert result.stdout.count('"name": "Tools.execute"') == APP_CALLS + 2
    assert '"status_code": "ERROR"' in result.stdout
    assert stored_rows(store) == []


def test_traces_exporter_none_stores_and_prints_nothing(tmp_path):
    store = tmp_path / "none.sqlite3"
    result = run_instrumented(
        [str(APP), "--calls", str(APP_CALLS)],
        child_env(SDK_TELEMETRY_STORE=str(store), SDK_TELEMETRY_INSTRUMENT=TARGETS, OTEL_TRACES_EXPORTER="none"),
    )
    assert_ran(result)
    assert '"name"' not in result.stdout
    assert stored_rows(store) == []


# --- (3) targets imported late, and targets that do not exist ----------------------------------


def test_a_module_imported_only_later_by_the_app_is_instrumented(tmp_path):
    # Both files live in a directory that is on sys.path only once the script runs (as its own).
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "late_sdk.py").write_text(
        textwrap.dedent(
            """
            class LateClient:
                def ping(self):
                    return "pong"

                def fail(self):
                    raise RuntimeError("late failure")
            """
        )
    )
    (app_dir / "late_app.py").write_text(
        textwrap.dedent(
            """
            import sys

            print("loaded at start:", "late_sdk" in sys.modules)

            def main():
                import late_sdk

                client = late_sdk.LateClient()
                print("ping:", [client.ping() for _ in range(3)])
                try:
                    client.fail()
                except RuntimeError as exc:
                    print("failed:", exc)

            main()
            """
        )
    )
    store = tmp_path / "late.sqlite3"
    result = run_instrumented(
        [str(app_dir / "late_app.py")],
        child_env(SDK_TELEMETRY_STORE=str(store), SDK_TELEMETRY_INSTRUMENT="late_sdk:LateClient"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "loaded at start: False" in result.stdout
    assert "ping: ['pong', 'pong', 'pong']" in result.stdout
    assert "failed: late failure" in result.stdout
    rows = stored_rows(store)
    assert Counter(str(row["SpanName"]) for row in rows) == {"LateClient.ping": 3, "LateClient.fail": 1}
    assert [row["SpanName"] for row in rows if row["StatusCode"] == "Error"] == ["LateClient.fail"]


def test_targets_that_do_not_exist_do_not_stop_the_app_nor_the_other_targets(tmp_path):
    store = tmp_path / "missing.sqlite3"
    result = run_instrumented(
        [str(APP), "--calls", str(APP_CALLS)],
        child_env(
            SDK_TELEMETRY_STORE=str(store),
            SDK_TELEMETRY_INSTRUMENT="acme_sdk:NoSuchClass,no_such_module_xyz:Client,not a target,acme_sdk:Tools",
        ),
    )
    assert_ran(result)
    assert "instrumented: True" in result.stdout
    assert "NoSuchClass" in result.stderr  # the user is told which target was not found
    calls = Counter(str(row["SpanName"]) for row in stored_rows(store))
    assert calls == {name: count for name, (count, _) in EXPECTED_CALLS.items() if name.startswith("Tools.")}


def test_a_method_target_instruments_that_method_only(tmp_path):
    # `module:Class.method` is a `module:attribute` target too (the attribute path is dotted).
    store = tmp_path / "method.sqlite3"
    result = run_instrumented(
        [str(APP), "--calls", str(APP_CALLS)],
        child_env(SDK_TELEMETRY_STORE=str(store), SDK_TELEMETRY_INSTRUMENT="acme_sdk:Tools.execute"),
    )
    assert_ran(result)
    rows = stored_rows(store)
    assert Counter(str(row["SpanName"]) for row in rows) == {"Tools.execute": APP_CALLS + 2}
    assert sum(row["StatusCode"] == "Error" for row in rows) == 2


# --- (4) opting out ----------------------------------------------------------------------------


def test_do_not_track_stores_nothing_and_patches_nothing(tmp_path):
    store = tmp_path / "dnt.sqlite3"
    result = run_instrumented(
        [str(APP), "--calls", str(APP_CALLS)],
        child_env(SDK_TELEMETRY_STORE=str(store), SDK_TELEMETRY_INSTRUMENT=TARGETS, DO_NOT_TRACK="1"),
    )
    assert_ran(result)
    assert "instrumented: False" in result.stdout
    assert stored_rows(store) == []
    assert not store.exists()  # not even an empty store is created
