"""Analytics against a store with known answers: funnels, journeys, retention, adoption, performance, exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk_telemetry.analytics import (
    AnalyticsError,
    TimeRange,
    adoption,
    export,
    funnel,
    journeys,
    open_source,
    performance,
    retention,
    top_errors,
)
from sdk_telemetry.analytics._adoption import trend
from tests.helpers.spans import (
    BASE,
    DAY,
    EXECUTE,
    HOUR,
    HTTP,
    LIST,
    LOGIN,
    NS,
    SEARCH,
    SESSIONS,
    known_spans,
    write_spans,
)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "known.sqlite3"
    write_spans(path, known_spans())
    return path


@pytest.fixture
def source(store: Path) -> Iterator[Any]:
    with open_source(store) as opened:
        yield opened


def test_funnel_per_session_counts_and_drop_off(source: Any) -> None:
    result = funnel(source, [LOGIN, LIST, EXECUTE], window_seconds=3600)
    assert [(s.step, s.count, s.dropped) for s in result.steps] == [(LOGIN, 6, 0), (LIST, 4, 2), (EXECUTE, 2, 2)]
    assert result.entered == 6 and result.completed == 2
    assert [round(s.conversion, 4) for s in result.steps] == [1.0, round(4 / 6, 4), round(2 / 6, 4)]
    assert [s.from_previous for s in result.steps] == [1.0, 4 / 6, 2 / 4]


def test_funnel_window_and_user_scope(source: Any) -> None:
    # s4's execute came 5000 s after its login: inside a two-hour window it counts.
    assert [s.count for s in funnel(source, [LOGIN, LIST, EXECUTE], window_seconds=7200).steps] == [6, 4, 3]
    # Per user: u1 and u2 complete, u3 and u5 only log in, u4 never logs in.
    by_user = funnel(source, [LOGIN, LIST, EXECUTE], window_seconds=3600, by="user")
    assert [s.count for s in by_user.steps] == [4, 2, 2]
    # Order matters: nobody searches and then logs in.
    assert [s.count for s in funnel(source, [SEARCH, LOGIN]).steps] == [3, 0]


def test_funnel_rejects_bad_questions(source: Any) -> None:
    with pytest.raises(AnalyticsError, match="at least two steps"):
        funnel(source, [LOGIN])
    with pytest.raises(AnalyticsError, match="window"):
        funnel(source, [LOGIN, LIST], window_seconds=0)


def test_journeys_paths_transitions_exits(source: Any) -> None:
    result = journeys(source, max_steps=5)
    assert result.sessions == 7
    assert result.paths[0] == {"path": [LOGIN, LIST, EXECUTE], "count": 2, "share": 2 / 7}
    assert {tuple(p["path"]) for p in result.paths} >= {(LOGIN, LIST, EXECUTE, SEARCH), (LIST, SEARCH), (LOGIN, SEARCH)}
    assert HTTP not in {step for p in result.paths for step in p["path"]}  # nested calls are not steps
    assert result.transitions[0] == {"from": LOGIN, "to": LIST, "count": 4}
    assert result.transitions[1] == {"from": LIST, "to": EXECUTE, "count": 3}
    assert [(e["function"], e["count"]) for e in result.exits] == [(EXECUTE, 3), (SEARCH, 3), (LIST, 1)]
    # Cut at three steps, s6's path joins the commonest one.
    assert journeys(source, max_steps=3).paths[0]["count"] == 3


def test_retention_cohorts_by_first_day(source: Any) -> None:
    result = retention(source, by="user", period="day", periods=3)
    assert [(c.cohort, c.size, c.returning) for c in result.cohorts] == [
        ("2026-11-02T00:00:00.000Z", 3, [3, 1, 1]),
        ("2026-11-03T00:00:00.000Z", 1, [1, 0, 0]),
        ("2026-11-04T00:00:00.000Z", 1, [1, 0, 0]),
    ]
    assert result.cohorts[0].rates == [1.0, 1 / 3, 1 / 3]
    weekly = retention(source, period="week", periods=2)
    assert [(c.cohort, c.size, c.returning) for c in weekly.cohorts] == [("2026-11-02T00:00:00.000Z", 5, [5, 0])]


def test_adoption_shares_and_trends(source: Any) -> None:
    result = adoption(source, by="session", period="day")
    assert result.active == 7
    features = {f.function: f for f in result.features}
    assert [row["share"] for row in features[SEARCH].per_period] == [0.0, 0.5, 1.0]
    assert [row["share"] for row in features[EXECUTE].per_period] == [2 / 3, 0.5, 0.5]
    assert [row["active"] for row in features[LOGIN].per_period] == [3, 2, 2]
    assert features[SEARCH].trend.direction == "up"
    assert features[SEARCH].trend.change == pytest.approx(1.0)
    assert features[EXECUTE].trend.direction == "down"
    assert features[EXECUTE].trend.change == pytest.approx(-1 / 6)
    assert features[LOGIN].trend.direction == "stable"
    assert "fitted change" in features[LOGIN].trend.reason and "least-squares" in features[LOGIN].trend.method
    assert features[EXECUTE].users == 4 and features[EXECUTE].share == 4 / 7


def test_trend_needs_two_periods() -> None:
    assert trend([0.4]).direction == "stable"
    assert "only 1 period" in trend([0.4]).reason
    assert trend([0.40, 0.42]).direction == "stable"
    assert trend([0.40, 0.46]).direction == "up"


def test_performance_percentiles_error_rate_throughput(source: Any) -> None:
    whole = TimeRange(BASE, BASE + 3 * DAY)
    result = performance(source, EXECUTE, whole, step_seconds=86_400)
    s = result.summary
    assert (s["calls"], s["errors"], s["error_rate"]) == (5, 1, 0.2)
    assert (s["p50_ms"], s["p95_ms"], s["p99_ms"], s["mean_ms"], s["max_ms"]) == (300, 1000, 1000, 400, 1000)
    assert [(b.start[:10], b.calls, b.errors, b.p50_ms, b.p95_ms) for b in result.buckets] == [
        ("2026-11-02", 3, 1, 200, 300),
        ("2026-11-03", 1, 0, 400, 400),
        ("2026-11-04", 1, 0, 1000, 1000),
    ]
    assert result.buckets[0].throughput_per_s == pytest.approx(3 / 86_400)
    assert result.buckets[0].error_rate == pytest.approx(1 / 3)


def test_performance_scales_sampled_calls(source: Any) -> None:
    result = performance(source, SEARCH)
    # Three stored searches, one kept at a 50 % sample rate: four calls were made.
    assert result.summary["stored_calls"] == 3
    assert result.summary["calls"] == 4


def test_top_errors(source: Any) -> None:
    errors = top_errors(source)
    assert len(errors) == 1
    assert errors[0]["type"] == "ValueError" and errors[0]["function"] == EXECUTE
    assert errors[0]["count"] == 1 and errors[0]["sample_message"] == "ValueError: bad input"


def test_csv_export_of_calls_for_a_time_range(source: Any, tmp_path: Path) -> None:
    out = tmp_path / "day0.csv"
    count = export(source, out, kind="calls", time_range=TimeRange(BASE, BASE + DAY))
    rows = list(csv.DictReader(out.open()))
    assert count == len(rows) == 9  # s1: 4 + one nested, s2: 2, s3: 2
    assert {row["session_id"] for row in rows} == {"s1", "s2", "s3"}
    error = next(row for row in rows if row["status"] == "Error")
    assert (error["function"], float(error["duration_ms"]), error["error_type"]) == (EXECUTE, 300.0, "ValueError")


def test_csv_and_parquet_export_of_aggregates(source: Any, tmp_path: Path) -> None:
    buffer = io.StringIO()
    whole = TimeRange(BASE, BASE + 3 * DAY)
    export(source, buffer, kind="aggregates", time_range=whole, function=EXECUTE, step_seconds=86_400)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert [(r["bucket_start"][:10], float(r["calls"]), float(r["p95_ms"])) for r in rows] == [
        ("2026-11-02", 3.0, 300.0),
        ("2026-11-03", 1.0, 400.0),
        ("2026-11-04", 1.0, 1000.0),
    ]
    import pyarrow.parquet as pq

    path = tmp_path / "calls.parquet"
    assert export(source, path, kind="calls", fmt="parquet", time_range=whole) == 20
    table = pq.read_table(path)
    assert table.num_rows == 20
    assert sorted(set(table.column("function").to_pylist())) == sorted({LOGIN, LIST, EXECUTE, SEARCH, HTTP})


def test_export_rejects_unknown_kind_and_format(source: Any, tmp_path: Path) -> None:
    with pytest.raises(AnalyticsError, match="kind"):
        export(source, tmp_path / "x", kind="spans")
    with pytest.raises(AnalyticsError, match="format"):
        export(source, tmp_path / "x", fmt="xlsx")


def test_time_range_parsing() -> None:
    assert TimeRange.parse("2026-11-02T00:00:00Z", "2026-11-03").start == BASE
    assert TimeRange.parse(since="1h", now=1000.0 * 3600).start == 999 * HOUR
    with pytest.raises(AnalyticsError, match="since"):
        TimeRange.parse("yesterday-ish")
    with pytest.raises(AnalyticsError, match="before"):
        TimeRange.parse("2026-11-03", "2026-11-02")


def test_events_are_funnel_steps_and_exported(store: Path, tmp_path: Path) -> None:
    from sdk_telemetry.store import _sqlite

    connection = _sqlite.connect(store)
    rows = []
    for index, session in enumerate(("s1", "s2")):  # both sessions saw the onboarding event after logging in
        user, start, _ = SESSIONS[session]
        values = {
            "Timestamp": BASE + start + 5 * NS, "EventId": f"event-{index}", "TraceId": "", "SpanId": "",
            "SeverityText": "INFO", "SeverityNumber": 9, "ServiceName": "acme-sdk", "Body": "onboarding shown",
            "ResourceAttributes": f'{{"session.id": "{session}", "enduser.id": "{user}"}}', "ScopeName": "app",
            "LogAttributes": "{}", "EventName": "onboarding.shown", "SessionId": session,
        }  # fmt: skip
        rows.append(tuple(values[column] for column in _sqlite.LOG_COLUMNS))
    with connection:
        connection.executemany(_sqlite.INSERT_LOG, rows)
    connection.close()
    with open_source(store) as source:
        steps = funnel(source, [LOGIN, "onboarding.shown", LIST], window_seconds=3600).steps
        assert [(s.step, s.count) for s in steps] == [(LOGIN, 6), ("onboarding.shown", 2), (LIST, 2)]
        out = tmp_path / "events.csv"
        assert export(source, out, kind="events") == 2
    exported = list(csv.DictReader(out.open()))
    assert [(row["event"], row["session_id"]) for row in exported] == [
        ("onboarding.shown", "s1"),
        ("onboarding.shown", "s2"),
    ]
