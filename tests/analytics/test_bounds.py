"""Times, durations, funnel steps and `by` outside what both engines can answer are refused by name."""

from __future__ import annotations

import pytest

from sdk_telemetry.analytics import AnalyticsError, TimeRange, funnel
from sdk_telemetry.analytics._funnels import MAX_STEPS
from sdk_telemetry.analytics._range import parse_duration, parse_time
from sdk_telemetry.analytics._source import Source


@pytest.mark.parametrize(
    "value", ["99999999999", "9" * 400, "9999-12-31", "0001-01-01T00:00:00Z", "2262-04-12T00:00:00Z", -1.0, 1e300]
)
def test_times_outside_1970_to_2200_are_refused(value: object) -> None:
    with pytest.raises(AnalyticsError, match="since: must be"):
        TimeRange.parse(since=value)


def test_times_inside_the_bounds_are_kept() -> None:
    assert parse_time("2199-12-31T00:00:00Z") == 7258032000 * 10**9
    assert parse_time("1970-01-01T00:00:00Z") == 0
    assert parse_time(1.5) == 1_500_000_000


@pytest.mark.parametrize("value", ["0.0000000001s", "0.5ms", "10000000d", "99999999999999w", 1e-9, 4e9])
def test_durations_outside_a_millisecond_to_a_century_are_refused(value: object) -> None:
    with pytest.raises(AnalyticsError, match="step: must be a positive duration between 1ms and 100 years"):
        parse_duration(value, "step")  # type: ignore[arg-type]


def test_a_relative_time_too_far_back_is_refused() -> None:
    with pytest.raises(AnalyticsError, match="since"):
        TimeRange.parse(since="10000000d")


def test_by_with_control_characters_is_refused() -> None:
    for by in ["\x00", "host\nname", "a\tb"]:
        with pytest.raises(AnalyticsError, match="by: expected"):
            Source.actor(by)
    assert Source.actor("host.name") == "host.name"


def test_funnel_steps_are_at_most_what_windowfunnel_takes() -> None:
    with pytest.raises(AnalyticsError, match=f"at most {MAX_STEPS} steps, got 33"):
        funnel(None, ["Api.get"] * 33)  # type: ignore[arg-type]  # refused before the source is read
