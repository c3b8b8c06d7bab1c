"""`sdk_telemetry.testing` in an SDK author's own test suite: a child pytest run of a small SDK whose
telemetry is off for tests (`SDK_TELEMETRY_ENVIRONMENT=test`), captured with the plugin's fixture
and with the context manager."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.testing import capture_telemetry

pytest_plugins = ["pytester"]

SDK = """
from sdk_telemetry import configure_telemetry, instrument

telemetry = configure_telemetry(service_name="acme-sdk")  # off: SDK_TELEMETRY_ENVIRONMENT=test


class NotFound(Exception):
    pass


class Client:
    def get(self, key: str) -> str:
        if key == "missing":
            raise NotFound(f"no item {key}")
        return key.upper()

    def created(self) -> None:
        telemetry.log("client.created", {"region": "eu", "api_key": "sk-0123456789"})


instrument(Client)
"""

TESTS = """
import pytest
from acme_sdk import Client, NotFound, telemetry


def test_off_for_tests():
    assert not telemetry.enabled


def test_a_call_is_captured(captured_telemetry):
    assert Client().get("a") == "A"
    span = captured_telemetry.assert_recorded("Client.get")
    assert span.attributes["code.function.name"].endswith("Client.get")


def test_an_error_is_captured(captured_telemetry):
    with pytest.raises(NotFound):
        Client().get("missing")
    captured_telemetry.assert_recorded("Client.get", error=NotFound)
    assert captured_telemetry.errors()[0].status.description == "NotFound: no item missing"


def test_events_are_captured_scrubbed(captured_telemetry):
    Client().created()
    event = captured_telemetry.event("client.created")
    assert event.data == {"region": "eu", "api_key": "[REDACTED:api_key]"}


def test_a_wrong_expectation_says_what_was_recorded(captured_telemetry):
    Client().get("b")
    captured_telemetry.assert_recorded("Client.put")
"""


def test_the_plugin_captures_an_sdks_calls_while_its_telemetry_is_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDK_TELEMETRY_ENVIRONMENT", "test")
    pytester.makepyfile(acme_sdk=SDK, test_acme=TESTS)
    pytester.makeconftest('pytest_plugins = ["sdk_telemetry.testing"]')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4, failed=1)
    assert "expected one span named 'Client.put', found 0; recorded: ['Client.get']" in result.stdout.str()


def test_without_the_plugin_telemetry_off_wraps_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDK_TELEMETRY_ENVIRONMENT", "test")
    pytester.makepyfile(
        acme_sdk=SDK,
        test_acme="""
from acme_sdk import Client
from sdk_telemetry import is_instrumented

def test_untouched():
    assert not is_instrumented(Client.__dict__["get"])
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def test_the_context_manager_takes_the_calls_from_the_configured_exporters(tmp_path: Path) -> None:
    """With telemetry on, a capture takes the calls made inside it; the store gets the others."""
    store = tmp_path / "store.sqlite3"
    telemetry = configure_telemetry(exporter="local", store_path=str(store), batch_interval=0.05)

    @instrument(name="acme.ping")
    def ping() -> str:
        return "pong"

    ping()
    with capture_telemetry() as captured:
        ping()
        ping()
    ping()
    assert captured.names() == ["acme.ping", "acme.ping"]
    assert telemetry.flush(timeout=10)
    (stored,) = sqlite3.connect(store).execute("SELECT count(*) FROM otel_traces").fetchone()
    assert stored == 2
    captured.clear()
    assert captured.spans == []
