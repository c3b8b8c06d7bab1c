"""A process that just ends must exit within the exit bound, whatever the telemetry endpoint does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from exporters.tests.helpers.loopback import LoopbackServer, Reply
from tests.helpers.processes import child_env

SLACK = 1.5

CHILD = """
import time
from sdk_telemetry import configure_telemetry, instrument

class Client:
    def ping(self):
        return "pong"

    def fail(self):
        raise ValueError("nope")

configure_telemetry(exporter="composio", endpoint={endpoint!r}, batch_interval={interval})
instrument(Client)
client = Client()
for _ in range(20):
    client.ping()
for _ in range(3):
    try:
        client.fail()
    except ValueError:
        pass
time.sleep({settle})  # the worker is now inside an export
print(time.monotonic(), flush=True)
"""


Loopback = LoopbackServer


@pytest.fixture
def hanging() -> Iterator[LoopbackServer]:
    """Accepts connections and reads requests, never answers."""
    with Loopback(lambda request: Reply(hang=True)) as running:
        yield running


@dataclass
class Exit:
    inside: float  # parent's clock at exit minus the child's own monotonic() at its last line
    parent: float  # parent's clock at exit minus the moment the parent read that last line
    returncode: int
    stderr: str

    def __str__(self) -> str:
        return f"exit took {self.inside:.3f}s (child clock) / {self.parent:.3f}s (parent clock)"


def run_to_exit(endpoint: str, interval: float = 0.05, settle: float = 0.3, **env: str) -> Exit:
    """Run the child; time from its last line to its exit, on both clocks (CLOCK_MONOTONIC is system-wide)."""
    code = textwrap.dedent(CHILD.format(endpoint=endpoint, interval=interval, settle=settle))
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    line_read_at = time.monotonic()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the child did not exit within 30s of its last line; stderr: {process.stderr.read()[-2000:]}")
    exited_at = time.monotonic()
    stderr = process.stderr.read()
    assert line.strip(), f"the child printed nothing; stderr: {stderr[-2000:]}"
    return Exit(exited_at - float(line), exited_at - line_read_at, process.returncode, stderr)


_default_runs: list[tuple[Exit, int]] = []


@pytest.fixture
def default_exit() -> tuple[Exit, int]:
    """A child with the default bound against a hanging endpoint (run once, shared), and the requests it made."""
    if not _default_runs:
        with Loopback(lambda request: Reply(hang=True)) as server:
            _default_runs.append((run_to_exit(server.url), len(server.received)))
    return _default_runs[0]


def test_exit_within_the_default_bound_when_the_endpoint_never_answers(default_exit):
    result, requests = default_exit
    print(f"\ndefault bound (2.0s), hanging endpoint: {result}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert requests, "the child never reached the server, so nothing was in flight at exit"
    assert result.inside < 2.0 + SLACK, f"{result} (bound 2.0s + {SLACK}s slack)"
    assert result.parent < 2.0 + SLACK, f"{result} (bound 2.0s + {SLACK}s slack)"


def test_a_shorter_exit_timeout_exits_faster(hanging, default_exit):
    default, _ = default_exit
    short = run_to_exit(hanging.url, SDK_TELEMETRY_EXIT_TIMEOUT="0.5")
    print(f"\nbound 0.5s (SDK_TELEMETRY_EXIT_TIMEOUT=0.5), hanging endpoint: {short}; default bound: {default}")
    assert short.returncode == 0, short.stderr[-2000:]
    assert hanging.received
    assert short.inside < 0.5 + SLACK, f"{short} (bound 0.5s + {SLACK}s slack)"
    assert short.parent < 0.5 + SLACK, f"{short} (bound 0.5s + {SLACK}s slack)"
    assert short.inside < default.inside, f"0.5s bound: {short}; default bound: {default}"


def test_exit_within_the_bound_when_offline():
    with Loopback() as closed:
        url = closed.url
    result = run_to_exit(url, SDK_TELEMETRY_EXIT_TIMEOUT="0.5")  # the port is closed now: connection refused
    print(f"\nbound 0.5s, endpoint offline: {result}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.inside < 0.5 + SLACK, str(result)


def test_exit_within_the_bound_when_the_endpoint_is_gone_and_the_otlp_fallback_hangs(hanging):
    with Loopback(lambda request: Reply(status=404)) as gone:
        result = run_to_exit(
            gone.url, SDK_TELEMETRY_EXIT_TIMEOUT="0.5", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=hanging.url + "/v1/traces"
        )
        assert gone.received
    print(f"\nbound 0.5s, 404 endpoint and hanging OTLP fallback: {result}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert hanging.requests_to("/v1/traces"), "the fallback was never tried"
    assert result.inside < 0.5 + SLACK, str(result)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf"])
def test_a_garbage_exit_timeout_falls_back_to_the_default_and_queued_spans_are_sent_at_exit(value):
    with Loopback() as server:
        # A long batch interval: the successes are still queued when the child ends.
        result = run_to_exit(server.url, interval=30, settle=0.0, SDK_TELEMETRY_EXIT_TIMEOUT=value)
        invocations = server.wait_for("/metrics/invocations", timeout=1)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.inside < 2.0 + SLACK, str(result)
    delivered = sum(len(request.json()) for request in invocations)
    assert delivered == 20, f"SDK_TELEMETRY_EXIT_TIMEOUT={value}: {delivered} of 20 queued successes sent at exit"
    assert len(server.requests_to("/errors")) == 3
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
