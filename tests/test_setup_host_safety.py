"""Telemetry never hurts the host program: no exception, no network wait in a call, nothing at import."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from exporters.tests.helpers.loopback import LoopbackServer, Reply
from sdk_telemetry import configure_telemetry, instrument
from tests.helpers.processes import child_env, run_python

#: Generous for a span's bookkeeping, far below any network round trip with retries or timeouts.
CALL_BUDGET = 0.5  # a loaded shared machine can stall a thread for tens of ms


Loopback = LoopbackServer


@pytest.fixture
def hanging() -> Iterator[LoopbackServer]:
    with Loopback(lambda request: Reply(hang=True)) as running:
        yield running


class Failure(Exception):
    pass


class Client:
    def ping(self, n: int = 0) -> int:
        return n

    def fail(self) -> None:
        raise Failure("expected")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def timed_calls(client: Client, rounds: int) -> list[float]:
    durations = []
    for n in range(rounds):
        started = time.perf_counter()
        assert client.ping(n) == n
        durations.append(time.perf_counter() - started)
        if n % 10 == 0:
            started = time.perf_counter()
            with pytest.raises(Failure) as raised:
                client.fail()
            durations.append(time.perf_counter() - started)
            assert type(raised.value) is Failure and str(raised.value) == "expected"
    return durations


def test_an_endpoint_that_is_down_neither_raises_into_nor_slows_the_calls():
    telemetry = configure_telemetry(exporter="composio", endpoint=closed_port_url(), batch_size=10, batch_interval=0.02)
    instrument(Client)
    client = Client()
    started = time.perf_counter()
    durations = timed_calls(client, 200)
    total = time.perf_counter() - started
    deadline = time.monotonic() + 5
    while (stats := telemetry.stats()["exporters"]["composio"])["exporter"]["requests"] < 1:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    telemetry.shutdown(timeout=0.1)

    assert max(durations) < CALL_BUDGET, f"slowest call {max(durations) * 1000:.1f} ms"
    assert total < 3.0, f"220 calls took {total:.2f}s"
    assert stats["exporter"]["requests"] >= 1, "the exports never tried the closed port"
    assert stats["queued"] == 220


def test_calls_return_before_any_network_io_with_a_server_that_never_answers(hanging):
    telemetry = configure_telemetry(exporter="composio", endpoint=hanging.url, batch_interval=30)
    instrument(Client)
    client = Client()

    started = time.perf_counter()
    client.ping()
    assert time.perf_counter() - started < CALL_BUDGET
    started = time.perf_counter()
    with pytest.raises(Failure):
        client.fail()
    # The server never answers, so a call that waited on its error's POST could not return in budget.
    # (The POST itself may start before the call has returned: the exporting thread runs meanwhile.)
    assert time.perf_counter() - started < CALL_BUDGET, "the call waited on the error's POST"

    [request] = hanging.wait_for("/errors", timeout=5)
    assert "expected" in request.body.decode(), "the POST that hangs is not the call's error"
    # The export is now stuck on the hanging server; calls still return at once.
    started = time.perf_counter()
    for n in range(50):
        client.ping(n)
    took = time.perf_counter() - started
    telemetry.shutdown(timeout=0.1)
    assert took < 50 * CALL_BUDGET / 5, f"50 calls took {took:.2f}s while an export hangs"


@pytest.mark.parametrize(
    "env",
    [
        {"SDK_TELEMETRY_TIMEOUT": "nan"},
        {"SDK_TELEMETRY_HEADERS": "x-bad=%E2%82%AC"},
        {"SDK_TELEMETRY_TIMEOUT": "abc", "SDK_TELEMETRY_HEADERS": "novalue"},
    ],
    ids=["timeout-nan", "header-non-latin1", "timeout-abc-header-novalue"],
)
def test_garbage_settings_never_reach_the_calls(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with Loopback() as server:
        telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.02)
        instrument(Client)
        client = Client()
        durations = timed_calls(client, 20)
        telemetry.flush(timeout=5)
    assert max(durations) < CALL_BUDGET


def test_importing_creates_no_file_and_no_thread(tmp_path):
    home, data, cwd = tmp_path / "home", tmp_path / "data", tmp_path / "cwd"
    for directory in (home, data, cwd):
        directory.mkdir()
    store = tmp_path / "store" / "telemetry.sqlite3"
    code = """
        import json, sys, threading
        before = threading.active_count()
        import sdk_telemetry
        import sdk_telemetry.store
        import sdk_telemetry.cli
        import sdk_telemetry.cli.commands
        import sdk_telemetry.distro
        import sdk_telemetry_exporters
        print(json.dumps({
            "before": before,
            "after": threading.active_count(),
            "threads": [thread.name for thread in threading.enumerate()],
        }))
    """
    env = child_env(HOME=str(home), XDG_DATA_HOME=str(data), SDK_TELEMETRY_STORE=str(store))
    result = run_python(code, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["after"] == report["before"], f"threads after import: {report['threads']}"
    created = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path not in (home, data, cwd))
    assert created == [], f"import created {created}"


def test_configuring_creates_no_store_file_and_no_thread_until_the_first_call(tmp_path):
    store = tmp_path / "store" / "telemetry.sqlite3"
    code = """
        import json, os, threading
        from sdk_telemetry import configure_telemetry, instrument

        class Client:
            def ping(self):
                return "pong"

        def observe():
            store = os.path.exists(os.environ["SDK_TELEMETRY_STORE"])
            return {"threads": threading.active_count() - before, "store": store}

        before = threading.active_count()
        telemetry = configure_telemetry()
        instrument(Client)
        configured = observe()
        Client().ping()
        telemetry.flush()
        used = observe()
        print(json.dumps({"configured": configured, "used": used}))
    """
    result = run_python(code, env=child_env(SDK_TELEMETRY_STORE=str(store)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["configured"] == {"threads": 0, "store": False}, report
    assert report["used"] == {"threads": 1, "store": True}, report


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "inf"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "nan"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1e999"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "abc"),
        ("OTEL_BSP_SCHEDULE_DELAY", "inf"),
        ("OTEL_BSP_SCHEDULE_DELAY", "-5"),
        ("SDK_TELEMETRY_EXIT_TIMEOUT", "nan"),
        ("SDK_TELEMETRY_TIMEOUT", "inf"),
    ],
)
def test_a_garbage_environment_value_never_makes_configure_raise_and_calls_are_still_recorded(
    monkeypatch, variable, value
):
    monkeypatch.setenv(variable, value)
    telemetry = configure_telemetry(exporter="local")
    instrument(Client)
    client = Client()
    for n in range(3):
        client.ping(n)
    assert telemetry.flush(timeout=1), f"{variable}={value}: flush did not complete"
    assert telemetry.stats()["exported"] == 3, telemetry.stats()
