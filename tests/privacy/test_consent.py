"""Explicit consent: off until granted when an SDK chooses that mode; opt-outs win over a grant."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.pipeline import prepare
from sdk_telemetry.privacy import consent as consent_module
from sdk_telemetry.privacy.consent import consent_granted, grant_consent, revoke_consent
from tests.helpers.processes import child_env


class Client:
    def call(self) -> str:
        return "ok"

    def fail(self) -> None:
        raise ValueError("no")


def calls(count: int = 3) -> None:
    client = Client()
    for _ in range(count):
        client.call()
    with pytest.raises(ValueError):
        client.fail()


def invocation_total(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    if data is None:
        return 0
    return sum(
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "sdk_telemetry.invocations"
        for point in metric.data.data_points
    )


def test_without_consent_mode_everything_is_sent(pipeline):
    pipeline.configure()
    instrument(Client)
    calls()
    pipeline.flush()
    assert len(pipeline.rows()) == 4
    assert not consent_granted()


def test_nothing_leaves_until_consent_is_granted_and_earlier_spans_are_discarded(pipeline):
    reader = InMemoryMetricReader()
    pipeline.telemetry = configure_telemetry(
        exporter=["composio", "local", "otlp"],
        endpoint=pipeline.server.url,
        store_path=str(pipeline.store),
        consent_required=True,
        metric_readers=[reader],
    )
    instrument(Client)
    before = prepare.stats()["withheld_no_consent"]
    calls()
    pipeline.flush()
    assert pipeline.rows() == []
    assert pipeline.server.received == []
    assert invocation_total(reader) == 0
    assert prepare.stats()["withheld_no_consent"] - before == 4

    grant_consent()
    calls(2)
    pipeline.flush()
    assert len(pipeline.rows()) == 3  # only what was recorded after the grant
    assert len(pipeline.payloads()) == 3
    assert invocation_total(reader) == 3

    revoke_consent()
    calls(5)
    pipeline.flush()
    assert len(pipeline.rows()) == 3
    assert invocation_total(reader) == 3


def test_consent_mode_from_the_environment(pipeline, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_CONSENT_REQUIRED", "true")
    pipeline.configure()
    instrument(Client)
    calls()
    pipeline.flush()
    assert pipeline.rows() == []
    grant_consent()
    calls(1)
    pipeline.flush()
    assert len(pipeline.rows()) == 2


def test_a_grant_does_not_override_do_not_track(pipeline, monkeypatch):
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    grant_consent()
    telemetry = pipeline.configure(consent_required=True)
    assert not telemetry.enabled
    instrument(Client)
    Client().call()
    assert pipeline.rows() == []
    assert pipeline.server.received == []


def test_consent_is_process_wide_for_threads_started_later(pipeline):
    import threading

    pipeline.configure(consent_required=True)
    instrument(Client)
    grant_consent()
    worker = threading.Thread(target=Client().call)
    worker.start()
    worker.join()
    pipeline.flush()
    assert len(pipeline.rows()) == 1


def test_consent_functions_state():
    consent_module.reset()
    assert not consent_granted()
    grant_consent()
    assert consent_granted()
    revoke_consent()
    assert not consent_granted()


def test_in_a_fresh_process_nothing_is_written_before_consent(tmp_path):
    store = tmp_path / "consent.sqlite3"
    code = """
        import sqlite3
        import sys
        from sdk_telemetry import configure_telemetry, instrument
        from sdk_telemetry.privacy.consent import grant_consent

        class Client:
            def call(self):
                return 1

        telemetry = configure_telemetry(exporter="local", consent_required=True)
        instrument(Client)
        Client().call()
        telemetry.flush()
        try:
            before = sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM otel_traces").fetchone()[0]
        except sqlite3.OperationalError:  # no table: nothing was ever written
            before = 0
        grant_consent()
        Client().call()
        telemetry.flush()
        after = sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM otel_traces").fetchone()[0]
        print(before, after)
    """
    env = child_env(SDK_TELEMETRY_STORE=str(store))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(store)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1"]
