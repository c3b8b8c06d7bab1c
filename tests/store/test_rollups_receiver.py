"""The receiver fills the rollups as it stores calls and trims each tier after its own days; the
`serve` options and their variables set those days."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdk_telemetry.cli.commands import app
from sdk_telemetry.receiver import ReceiverSettings
from sdk_telemetry.store.rollups import NS_PER_DAY, bucket_start
from tests.helpers.receiver import KEY, serve

INVOCATIONS = "/v1/metrics/invocations"


def test_the_receiver_rolls_up_what_it_stores_and_trims_each_tier_after_its_days(tmp_path: Path) -> None:
    settings = ReceiverSettings(
        store_path=tmp_path / "s.sqlite3",
        api_keys=(KEY,),
        retention_days=7,
        retention_hourly_days=20,
        retention_daily_days=0,  # forever
    )
    now = time.time()
    with serve(settings) as running:
        calls = [
            {"functionName": "Client.get", "timestamp": now - days * 86_400, "durationMs": 5.0 + days}
            for days in (1, 1, 10, 40)
        ]
        calls.append(
            {"functionName": "Client.get", "timestamp": now - 10 * 86_400, "durationMs": 1.0, "error": {"name": "Boom"}}
        )
        assert running.post(INVOCATIONS, calls).status_code == 200
        assert running.post(INVOCATIONS, calls).status_code == 200  # a retry: counted once
        # Every call in its hour; the days hold the hours folded (all but the latest ones).
        kept = dict(running.rows("SELECT Tier, SUM(Kept) FROM otel_traces_rollups GROUP BY Tier"))
        assert kept["hour"] == 5 and 3 <= kept["day"] <= 5
        errors = running.rows("SELECT SUM(Errors) FROM otel_traces_rollups WHERE Tier = 'hour'")
        assert errors == [(1.0,)]
        deleted = asyncio.run_coroutine_threadsafe(running.app.state.receiver.enforce_retention(), running.loop)
        totals = deleted.result(30)
        assert totals["spans"] == 3  # older than 7 days
        assert totals["rollups"] == 1  # the hour 40 days ago (the other tiers keep it)
        hours = running.rows("SELECT BucketStart FROM otel_traces_rollups WHERE Tier = 'hour'")
        assert len(hours) in (2, 3)  # the calls 1 and 10 days ago (the two of a day ago may share an hour)
        oldest_day = running.rows("SELECT MIN(BucketStart) FROM otel_traces_rollups WHERE Tier = 'day'")
        assert oldest_day == [(bucket_start("day", int((now - 40 * 86_400) * 1e9)),)]
        since = dict(running.rows("SELECT Origin, Since FROM otel_traces_complete_since"))
        assert set(since) == {"raw", "hour"}
        assert abs(since["hour"] - (time.time_ns() - 20 * NS_PER_DAY)) < 60 * 10**9


def test_serve_refuses_a_tier_retention_that_is_not_a_number_of_days(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--insecure-no-auth", "--store", str(tmp_path / "s.sqlite3")],
        env={"SDK_TELEMETRY_RETENTION_WEEKLY_DAYS": "nan"},
    )
    assert result.exit_code == 2
    assert "retention_weekly_days must be a number of days (0: forever), got nan" in result.output


@pytest.mark.parametrize("tier", ["hourly", "daily", "weekly", "monthly"])
def test_serve_shows_each_tier_option_with_its_variable(tier: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert f"--retention-{tier}-days" in result.output
    assert f"SDK_TELEMETRY_RETENTION_{tier.upper()}_DAYS" in result.output
