"""Series that tell the truth about time, filters, and retention's future cells, over a simulated week."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest

from sdk_telemetry.analytics import AnalyticsError, TimeRange, funnel, journeys, open_source, performance, retention
from tests.helpers.spans import DAY, HOUR, NS
from tests.helpers.week import DAY_END_HOUR, DAY_START_HOUR, EXECUTE, LIST, LOGIN, Made
from tests.helpers.week import WEEK_NOW as NOW

#: Thursday 2026-12-03 15:20 UTC: the week runs from Friday 27 Nov to this afternoon.


def _starts(result: Any) -> list[int]:
    return [int(datetime.fromisoformat(b.start.replace("Z", "+00:00")).timestamp()) * NS for b in result.buckets]


def test_the_last_24_hours_are_48_half_hours_with_the_night_present_and_empty(source: Any, week_store: Any) -> None:
    made: Made = week_store[1]
    period = TimeRange(NOW - DAY, NOW)
    result = performance(source, None, period)
    step = 1800 * NS
    assert result.step_seconds == 1800
    starts = _starts(result)
    # 15:20 - 24 h = 15:20 yesterday: the bucket from 15:00 to the one from 15:00 today, 49 in all
    # (the first and the last partly inside the range), every one 30 minutes after the previous.
    assert starts[0] == NOW - DAY - 20 * 60 * NS and starts[-1] == NOW - 20 * 60 * NS
    assert len(starts) == 49 and all(b - a == step for a, b in itertools.pairwise(starts))
    night = [
        b
        for b, at in zip(result.buckets, starts, strict=True)
        if not DAY_START_HOUR <= (at % DAY) // HOUR < DAY_END_HOUR
    ]
    assert len(night) >= 20 and all(b.calls == 0 and b.p50_ms is None and b.error_rate is None for b in night)
    assert all(b.throughput_per_s == 0 for b in night)
    assert sum(b.calls for b in result.buckets) == made.count(NOW - DAY, NOW) == result.summary["calls"]
    busy = next(b for b in result.buckets if b.calls)
    assert busy.throughput_per_min == pytest.approx(busy.throughput_per_s * 60)
    assert result.summary["throughput_per_min"] == pytest.approx(made.count(NOW - DAY, NOW) / (24 * 60))


def test_a_partial_bucket_rates_over_its_part_in_the_range(source: Any) -> None:
    # From 09:10 to 10:00: the 09:00 hour holds 50 minutes of the range.
    start = NOW - NOW % DAY + 9 * HOUR + 10 * 60 * NS
    result = performance(source, None, TimeRange(start, start + 50 * 60 * NS), step_seconds=3600)
    (bucket,) = result.buckets
    assert bucket.start.endswith("T09:00:00.000Z")
    assert bucket.throughput_per_min == pytest.approx(bucket.calls / 50)


def test_explicit_steps_align_to_the_utc_period_not_to_now(source: Any, week_store: Any) -> None:
    made: Made = week_store[1]
    days = performance(source, EXECUTE, TimeRange(NOW - 7 * DAY, NOW), step_seconds=86_400)
    assert [b.start for b in days.buckets][:2] == ["2026-11-26T00:00:00.000Z", "2026-11-27T00:00:00.000Z"]
    assert len(days.buckets) == 8 and days.buckets[0].calls == 0  # 26 Nov 15:20 onwards: before the week began
    for bucket, midnight in zip(days.buckets, _starts(days), strict=True):
        assert bucket.calls == made.count(max(midnight, NOW - 7 * DAY), min(midnight + DAY, NOW), function=EXECUTE)
    weeks = performance(source, None, TimeRange(NOW - 14 * DAY, NOW), step_seconds=7 * 86_400)
    assert [b.start for b in weeks.buckets] == [
        "2026-11-16T00:00:00.000Z",
        "2026-11-23T00:00:00.000Z",
        "2026-11-30T00:00:00.000Z",
    ]  # fmt: skip  (Mondays)
    hours = performance(source, None, TimeRange.parse("2026-12-01T10:17:00Z", "2026-12-01T12:00:00Z"), 3600)
    assert [b.start for b in hours.buckets] == ["2026-12-01T10:00:00.000Z", "2026-12-01T11:00:00.000Z"]


def test_too_many_buckets_are_refused_by_name(source: Any) -> None:
    with pytest.raises(AnalyticsError, match="step: 1s over this range makes 604,800 buckets"):
        performance(source, None, TimeRange(NOW - 7 * DAY, NOW), step_seconds=1)


def test_service_and_environment_filters_narrow_every_analysis(week_store: Any) -> None:
    path, made = week_store
    whole = TimeRange(NOW - 7 * DAY, NOW)
    with open_source(path, service="billing-sdk") as billing:
        assert performance(billing, None, whole).summary["calls"] == made.count(*_bounds(whole), service="billing-sdk")
        billing_sessions = {s for s, v in made.sessions.items() if v["service"] == "billing-sdk"}
        assert journeys(billing, "session", whole).sessions == len(billing_sessions)
        # SESSION_START is an event (otel_logs): the filter applies to events too.
        steps = funnel(billing, ["SESSION_START", LOGIN], 3600, "session", whole).steps
        assert [s.count for s in steps] == [len(billing_sessions)] * 2
    with open_source(path, environment="staging", service="acme-sdk") as staging:
        expected = made.count(*_bounds(whole), service="acme-sdk", environment="staging")
        assert performance(staging, None, whole).summary["calls"] == expected > 0
        assert performance(staging, LIST, whole).summary["calls"] == made.count(
            *_bounds(whole), function=LIST, service="acme-sdk", environment="staging"
        )
    with open_source(path, service="nope") as nothing:
        assert performance(nothing, None, whole).summary["calls"] == 0


def _bounds(period: TimeRange) -> tuple[int, int]:
    assert period.start is not None and period.end is not None
    return period.start, period.end


def test_retention_leaves_periods_yet_to_come_blank(source: Any, week_store: Any) -> None:
    made: Made = week_store[1]
    result = retention(source, "user", "day", 7, TimeRange(NOW - 7 * DAY, NOW))
    first_days = sorted({v["start"] - v["start"] % DAY for v in made.sessions.values()})
    assert len(result.cohorts) >= 1
    today = NOW - NOW % DAY
    for cohort in result.cohorts:
        day = int(datetime.fromisoformat(cohort.cohort.replace("Z", "+00:00")).timestamp()) * NS
        assert day in first_days
        elapsed = (today - day) // DAY  # periods that have happened after the cohort's own
        assert all(rate is not None for rate in cohort.rates[: elapsed + 1])
        assert cohort.rates[elapsed + 1 :] == [None] * (7 - elapsed - 1)
        assert cohort.returning[elapsed + 1 :] == [None] * (7 - elapsed - 1)
    first = result.cohorts[0]
    assert first.rates[0] == 1.0 and first.size == first.returning[0]
    # With an open range, "yet to come" is measured from now.
    open_ended = retention(source, "user", "day", 7, TimeRange(NOW - 7 * DAY), now=(NOW - DAY) / NS)
    assert open_ended.cohorts[0].rates[-1] is None
