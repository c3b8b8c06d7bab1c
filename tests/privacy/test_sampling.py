"""Sampling of successful invocations: overall and per function, errors always kept, the rate on
what is kept (so stored counts scale back), and upstream `OTEL_TRACES_SAMPLER` alongside."""

from __future__ import annotations

import json
import logging

import pytest
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.pipeline import prepare
from sdk_telemetry.privacy.sampling import SamplingSettings
from tests.helpers.privacy import Pipeline, span_attributes

N = 400


class Tools:
    def list(self) -> int:
        return 1

    def execute(self, fail: bool = False) -> str:
        if fail:
            raise RuntimeError("tool failed")
        return "done"

    def stream(self) -> int:
        return 2


def run(calls: int = N, failures: int = 0) -> None:
    instrument(Tools)
    tools = Tools()
    for _ in range(calls):
        tools.list()
        tools.execute()
        tools.stream()
    for _ in range(failures):
        with pytest.raises(RuntimeError):
            tools.execute(fail=True)


def stored(pipeline: Pipeline) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in pipeline.rows():
        rows.setdefault(row["SpanName"], []).append(row)
    return rows


def scaled(rows: list[dict]) -> float:
    """The true count estimated from the kept spans: each stands for 1 / its rate."""
    return sum(1 / span_attributes(row).get(attr.SAMPLE_RATE, 1.0) for row in rows)


def test_by_default_everything_is_kept_and_no_rate_is_recorded(pipeline):
    pipeline.configure()
    run(calls=20)
    pipeline.flush()
    rows = stored(pipeline)
    assert {name: len(found) for name, found in rows.items()} == {
        "Tools.list": 20,
        "Tools.execute": 20,
        "Tools.stream": 20,
    }
    assert all(attr.SAMPLE_RATE not in span_attributes(row) for found in rows.values() for row in found)


def test_overall_rate_keeps_about_that_share_and_records_it(pipeline):
    pipeline.configure(sample_rate=0.5)
    run()
    pipeline.flush()
    rows = stored(pipeline)["Tools.list"]
    assert 120 <= len(rows) <= 280  # 200 expected; sd 10
    assert {span_attributes(row)[attr.SAMPLE_RATE] for row in rows} == {0.5}
    assert {row["SampleRate"] for row in rows} == {0.5}  # the store's column, read from the attribute
    assert abs(scaled(rows) - N) <= 80
    composio = [p for p in pipeline.payloads() if p["functionName"] == "Tools.list"]
    assert len(composio) == len(rows)


def test_errors_are_always_kept_at_rate_one(pipeline):
    pipeline.configure(sample_rate=0.0)
    run(calls=50, failures=7)
    pipeline.flush()
    rows = stored(pipeline)
    assert set(rows) == {"Tools.execute"}
    assert len(rows["Tools.execute"]) == 7
    assert all(row["StatusCode"] == "Error" for row in rows["Tools.execute"])
    assert all(attr.SAMPLE_RATE not in span_attributes(row) for row in rows["Tools.execute"])
    assert len([p for p in pipeline.payloads() if "error" in p]) == 7


def test_per_function_rates_by_exact_name_and_glob(pipeline):
    pipeline.configure(sample_rate=1.0, sample_rates={"Tools.list": 0.0, "Tools.s*": 0.25})
    run()
    pipeline.flush()
    rows = stored(pipeline)
    assert "Tools.list" not in rows
    assert len(rows["Tools.execute"]) == N
    assert 50 <= len(rows["Tools.stream"]) <= 150  # 100 expected; sd 8.7
    assert {span_attributes(row)[attr.SAMPLE_RATE] for row in rows["Tools.stream"]} == {0.25}
    assert abs(scaled(rows["Tools.stream"]) - N) <= 200


def test_an_exact_name_wins_over_a_glob():
    settings = SamplingSettings(rate=0.9, rates=(("Tools.*", 0.5), ("Tools.list", 0.1)))
    assert settings.rate_for("Tools.list") == 0.1
    assert settings.rate_for("Tools.execute") == 0.5
    assert settings.rate_for("Files.get") == 0.9


def test_sampled_out_spans_are_counted(pipeline):
    before = prepare.stats()["sampled_out"]
    pipeline.configure(sample_rates={"Tools.list": 0.0})
    run(calls=30)
    pipeline.flush()
    assert prepare.stats()["sampled_out"] - before == 30


def test_other_instrumentations_spans_are_not_sampled(pipeline):
    from opentelemetry import trace

    pipeline.configure(sample_rate=0.0)
    tracer = trace.get_tracer("someone.else")
    for _ in range(5):
        with tracer.start_as_current_span("http GET"):
            pass
    pipeline.flush()
    assert len(stored(pipeline)["http GET"]) == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sample_rate": 1.5}, "sample_rate must be between 0 and 1"),
        ({"sample_rate": "often"}, "sample_rate must be a number"),
        ({"sample_rates": {"Tools.list": -0.1}}, r"sample_rates\['Tools.list'\] must be between 0 and 1"),
        ({"sample_rates": [("Tools.list", 0.1)]}, "sample_rates must be a mapping"),
    ],
)
def test_bad_rates_are_clear_errors(arguments, message):
    with pytest.raises((TypeError, ValueError), match=message):
        configure_telemetry(exporter="none", **arguments)


def test_bad_rates_in_the_environment_are_logged_and_ignored(caplog):
    caplog.set_level(logging.WARNING)
    settings = SamplingSettings.resolve(
        {}, {"SDK_TELEMETRY_SAMPLE_RATE": "2", "SDK_TELEMETRY_SAMPLE_RATES": "Tools.list=0.1,broken,Files.*=x"}
    )
    assert settings.rate == 1.0
    assert settings.rates == (("Tools.list", 0.1),)
    assert "SDK_TELEMETRY_SAMPLE_RATE must be between 0 and 1" in caplog.text
    assert "broken" in caplog.text


# --- upstream samplers alongside -----------------------------------------------------------------


def test_upstream_always_off_records_nothing_not_even_errors(pipeline, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    pipeline.configure(sample_rate=0.5)
    run(calls=10, failures=2)
    pipeline.flush()
    assert pipeline.rows() == []
    assert pipeline.payloads() == []


def test_upstream_ratio_and_our_rate_combine(pipeline, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    pipeline.configure(sample_rate=0.5)
    run(failures=40)
    pipeline.flush()
    rows = stored(pipeline)
    assert 40 <= len(rows["Tools.list"]) <= 160  # 100 expected (0.5 upstream x 0.5 ours)
    assert {span_attributes(row)[attr.SAMPLE_RATE] for row in rows["Tools.list"]} == {0.5}
    errors = [row for row in rows["Tools.execute"] if row["StatusCode"] == "Error"]
    assert 5 <= len(errors) <= 35  # upstream decides at span start, so it drops errors too (20 expected)
    assert all(attr.SAMPLE_RATE not in json.loads(row["SpanAttributes"]) for row in errors)
