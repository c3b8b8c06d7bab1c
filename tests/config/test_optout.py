"""Opting out is process-wide and read from the environment: nothing patched, started, written or sent."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from exporters.tests.helpers.loopback import LoopbackServer
from sdk_telemetry import configure_telemetry, instrument, is_instrumented
from tests.helpers.processes import child_env, run_python

OPT_OUT_VARIABLES = ("SDK_TELEMETRY_DISABLED", "TELEMETRY_DISABLED", "DO_NOT_TRACK", "OTEL_SDK_DISABLED")

CHILD = """
import json
import threading
from sdk_telemetry import configure_telemetry, instrument

class Early:
    def ping(self):
        return "pong"

class Client:
    def ping(self):
        return "pong"

    def fail(self):
        raise ValueError("nope")

def snapshot(cls):
    return {name: id(value) for name, value in vars(cls).items()}

early_before, client_before = snapshot(Early), snapshot(Client)
threads_before = threading.active_count()

instrument(Early)  # before any configuration: the environment alone decides
telemetry = configure_telemetry()
instrument(Client)
client = Client()
for _ in range(3):
    client.ping()
    Early().ping()
try:
    client.fail()
except ValueError:
    pass
# A thread started later must not record either.
worker = threading.Thread(target=client.ping)
worker.start()
worker.join()
threads_after = threading.active_count()
flushed = telemetry.flush(timeout=5)
telemetry.shutdown()
print(json.dumps({
    "early_unchanged": snapshot(Early) == early_before,
    "client_unchanged": snapshot(Client) == client_before,
    "threads_before": threads_before,
    "threads_after": threads_after,
    "enabled": telemetry.settings.enabled,
    "reason": telemetry.settings.disabled_reason,
    "flushed": flushed,
}))
"""


Loopback = LoopbackServer


def run_child(server: LoopbackServer, **env: str) -> dict[str, Any]:
    """The child with both a Composio endpoint and the local store configured, plus `env`."""
    result = run_python(
        CHILD,
        env=child_env(
            OTEL_TRACES_EXPORTER="composio,local",
            SDK_TELEMETRY_ENDPOINT=server.url,
            OTEL_BSP_SCHEDULE_DELAY="50",
            **env,
        ),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    report["stderr"] = result.stderr
    return report


def store() -> Path:
    return Path(os.environ["SDK_TELEMETRY_STORE"])


def assert_nothing_happened(report: dict[str, Any], server: LoopbackServer) -> None:
    assert report["enabled"] is False, report
    assert report["early_unchanged"], "a class instrumented before configure_telemetry() was patched"
    assert report["client_unchanged"], "a class instrumented after configure_telemetry() was patched"
    assert report["threads_after"] == report["threads_before"], f"threads {report}"
    assert not store().exists(), "the store file was created"
    assert server.received == [], [request.path for request in server.received]


def assert_recorded(report: dict[str, Any], server: LoopbackServer) -> None:
    assert report["enabled"] is True, report
    assert not report["early_unchanged"] and not report["client_unchanged"], "nothing was patched"
    assert report["threads_after"] == report["threads_before"] + 2, f"one worker per exporter expected: {report}"
    assert store().exists()
    assert server.requests_to("/metrics/invocations") and server.requests_to("/errors")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
@pytest.mark.parametrize("variable", OPT_OUT_VARIABLES)
def test_an_opt_out_variable_turns_everything_off(server, variable, value):
    report = run_child(server, **{variable: value})
    assert_nothing_happened(report, server)
    assert report["reason"] == variable


@pytest.mark.parametrize("environment", ["test", "ci", "CI"])
def test_test_and_ci_environments_are_quiet_by_default(server, environment):
    report = run_child(server, SDK_TELEMETRY_ENVIRONMENT=environment)
    assert_nothing_happened(report, server)


@pytest.mark.parametrize("environment", ["test", "ci"])
def test_test_and_ci_environments_record_when_enabled_explicitly(server, environment):
    report = run_child(server, SDK_TELEMETRY_ENVIRONMENT=environment, SDK_TELEMETRY_ENABLED="true")
    assert_recorded(report, server)


def test_without_an_opt_out_the_same_child_records(server):
    """The control case: proves the child above can observe patching, threads, the store and requests."""
    report = run_child(server)
    assert_recorded(report, server)


def test_configure_in_code_with_environment_ci_and_enabled_records(server):
    class Client:
        def ping(self) -> str:
            return "pong"

    telemetry = configure_telemetry(
        exporter="composio", endpoint=server.url, environment="ci", enabled=True, batch_interval=0.05
    )
    assert telemetry.enabled
    instrument(Client)
    assert is_instrumented(Client.__dict__["ping"])
    Client().ping()
    assert telemetry.flush(timeout=5)
    [request] = server.wait_for("/metrics/invocations")
    [payload] = request.json()
    assert payload["functionName"] == "Client.ping"
    assert payload["source"]["environment"] == "ci"


def test_configure_in_code_with_environment_ci_alone_records_nothing(server):
    class Client:
        def ping(self) -> str:
            return "pong"

    before = dict(vars(Client))
    telemetry = configure_telemetry(exporter="composio", endpoint=server.url, environment="ci", batch_interval=0.05)
    assert not telemetry.enabled
    instrument(Client)
    assert all(vars(Client)[name] is value for name, value in before.items())
    assert not is_instrumented(vars(Client)["ping"])
    Client().ping()
    assert telemetry.flush(timeout=5)
    assert server.received == []
