"""Every misconfiguration is told in one warning line naming the variable (or the problem) and what
happens instead, at most once a minute; the host program carries on. In-process through `caplog`,
and for the running pipeline through a child Python's stderr."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from sdk_telemetry_exporters import notices

from sdk_telemetry import configure_telemetry, instrument
from tests.helpers.processes import child_env, run_python


class Client:
    def call(self) -> str:
        return "ok"


def telemetry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "sdk-telemetry" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "SDK_TELEMETRY_CAPTURE_ARGS",
            "maybe",
            "sdk-telemetry: SDK_TELEMETRY_CAPTURE_ARGS='maybe' is not a boolean (1/true/yes/on or 0/false/no/off); "
            "call arguments are not captured",
        ),
        (
            "SDK_TELEMETRY_ENABLED",
            "nah",
            "sdk-telemetry: SDK_TELEMETRY_ENABLED='nah' is not a boolean (1/true/yes/on or 0/false/no/off); "
            "ignored: on, unless an opt-out or a test/ci environment",
        ),
        (
            "SDK_TELEMETRY_EXPORTER",
            "local,nope",
            "sdk-telemetry: SDK_TELEMETRY_EXPORTER: unknown exporter 'nope' (known: composio, console, local, none, "
            "otlp, otlp_proto_http, tinker); skipped, using local only",
        ),
        (
            "SDK_TELEMETRY_ENDPOINT",
            "not-a-url",
            "sdk-telemetry: composio exporter: SDK_TELEMETRY_ENDPOINT='not-a-url' is not an http(s) URL such as "
            "https://telemetry.example.com: nothing is sent and everything it is given is dropped",
        ),
    ],
)
def test_each_invalid_value_is_one_warning_even_when_configured_three_times(
    variable, value, expected, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv(variable, value)
    if variable == "SDK_TELEMETRY_ENDPOINT":
        monkeypatch.setenv("SDK_TELEMETRY_EXPORTER", "composio")
    for batch_size in (10, 20, 30):  # other settings: a new setup each time, resolved again
        telemetry = configure_telemetry(batch_size=batch_size)
    assert telemetry_warnings(caplog) == [expected]
    assert telemetry.enabled and telemetry.settings.capture_args is False  # what the warning says happens
    instrument(Client)
    assert Client().call() == "ok", "the host program carries on"


def test_a_bad_endpoint_is_not_spooled_and_health_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", "not-a-url")
    monkeypatch.setenv("SDK_TELEMETRY_SPOOL_DIR", str(tmp_path / "spool"))
    telemetry = configure_telemetry(exporter="composio", batch_interval=30)
    instrument(Client)
    Client().call()
    assert telemetry.flush(timeout=5) is False
    details = telemetry.health_details()["composio"]
    assert details["level"] == "failing" and details["lost"] == 1 and details["pending_batches"] == 0
    assert details["problem"] == (
        "SDK_TELEMETRY_ENDPOINT='not-a-url' is not an http(s) URL such as https://telemetry.example.com: "
        "nothing is sent"
    )
    assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").rglob("*.json*"))


def test_the_same_warning_comes_again_after_a_minute(monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    clock = [1000.0]
    monkeypatch.setattr(notices.time, "monotonic", lambda: clock[0])
    assert [notices.warn("k", "problem %d", n) for n in range(3)] == [True, False, False]
    clock[0] += 59.0
    assert notices.warn("k", "problem") is False
    clock[0] += 1.5
    assert notices.warn("k", "problem again") is True
    assert notices.warn("other", "another problem") is True
    assert telemetry_warnings(caplog) == [
        "sdk-telemetry: problem 0",
        "sdk-telemetry: problem again",
        "sdk-telemetry: another problem",
    ]


def test_a_broken_log_handler_does_not_stop_the_host():
    class Exploding(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler broke")

        def handleError(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler broke twice")

    handler = Exploding()
    logger = logging.getLogger("sdk_telemetry")
    logger.addHandler(handler)
    try:
        assert notices.warn("explode", "told") is False
    finally:
        logger.removeHandler(handler)


# --- the running pipeline, in a child process: stderr is what a user sees ------------------------

CALLS_OVER_SECONDS = """
import time
from sdk_telemetry import configure_telemetry, instrument

class Client:
    def call(self):
        return "ok"

telemetry = configure_telemetry(batch_interval=0.2)
instrument(Client)
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    Client().call()
    telemetry.flush(timeout=5)
    time.sleep(0.05)
print("host finished", flush=True)
"""


def sdk_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_an_unwritable_store_warns_once_over_many_batches(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    env = child_env(SDK_TELEMETRY_STORE=str(blocker / "telemetry.sqlite3"))
    started = time.monotonic()
    result = run_python(CALLS_OVER_SECONDS.format(seconds=3), env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "host finished\n"
    lines = sdk_lines(result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"sdk-telemetry: cannot write the store {blocker / 'telemetry.sqlite3'}: ")
    assert lines[0].endswith("; spans are lost until it can be written")
    assert time.monotonic() - started >= 3


def test_a_dead_otlp_endpoint_is_one_line_not_upstreams_retry_lines():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    env = child_env(
        SDK_TELEMETRY_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="1",
    )
    result = run_python(CALLS_OVER_SECONDS.format(seconds=3), env=env, timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "host finished\n"
    lines = sdk_lines(result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"sdk-telemetry: OTLP export failed (POST {endpoint}: ")
    assert "Transient error" not in result.stderr and "Failed to export" not in result.stderr
