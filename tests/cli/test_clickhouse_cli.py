"""The commands with `--clickhouse`: the real `sdk-telemetry` command in a child process, reading
ClickHouse as the Collector writes it (chDB's engine in a directory, `chdb:PATH`), answers as it
does from the embedded store holding the same data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chdb import session as chdb_session

from sdk_telemetry.store import ClickHouseStore
from tests.analytics.test_engines import same
from tests.helpers.engines import END, NS, START, dataset, load_clickhouse, load_sqlite
from tests.helpers.processes import child_env

DATA = dataset()
RANGE = ["--since", str(START // NS), "--until", str(END // NS)]
#: The dataset is from 2025: kept by no tier's default days (ClickHouse's TTL would drop it at once).
FOREVER = [f"--retention-{tier}-days=0" for tier in ("hourly", "daily", "weekly", "monthly")]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("cli-engines")
    load_sqlite(base / "telemetry.sqlite3", DATA).close()
    session = chdb_session.Session(str(base / "chdb"))  # closed before the children open the directory
    load_clickhouse(ClickHouseStore.from_chdb(session), DATA)
    session.close()
    return base / "telemetry.sqlite3", f"chdb:{base / 'chdb'}"


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdk_telemetry", *args], env=child_env(), capture_output=True, text=True, timeout=120
    )


def answers(stores: tuple[Path, str], *args: str) -> tuple[Any, Any]:
    """The JSON answer of `args` from the store and from ClickHouse."""
    path, url = stores
    local = command(*args, "--store", str(path), "--json")
    remote = command(*args, "--clickhouse", url, "--json")
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    return json.loads(local.stdout), json.loads(remote.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ["funnel", "Api.login", "page_view", "Api.checkout", "--window", "30m", *RANGE],
        ["journeys", "--by", "user", *RANGE],
        ["retention", "--period", "week", "--periods", "6", *RANGE],
        ["adoption", "--period", "week", *RANGE],
        ["perf", "Api.search", "--step", "1d", *RANGE],
        ["sessions", *RANGE],
        ["calls", "Api.get", *RANGE],
    ],
    ids=lambda args: args[0],
)
def test_every_analysis_command_answers_the_same_from_clickhouse(stores: tuple[Path, str], args: list[str]) -> None:
    local, remote = answers(stores, *args)
    same(local, remote)
    assert local  # something was answered


def test_stats_and_errors_from_clickhouse(stores: tuple[Path, str]) -> None:
    path, url = stores
    for name in ("stats", "errors"):
        local = command(name, "--store", str(path), "--json")
        remote = command(name, "--clickhouse", url, "--json")
        assert local.returncode == remote.returncode == 0, remote.stderr
        assert json.loads(local.stdout) == json.loads(remote.stdout) != []


def test_a_clickhouse_that_cannot_be_read_is_one_line(tmp_path: Path, stores: tuple[Path, str]) -> None:
    empty = command("funnel", "a", "b", "--clickhouse", f"chdb:{tmp_path / 'nothing'}")
    assert empty.returncode == 1
    assert empty.stderr.count("\n") == 1 and "ClickHouse at chdb:" in empty.stderr and "otel_traces" in empty.stderr
    assert "Traceback" not in empty.stderr
    server = command("stats", "--clickhouse", "http://127.0.0.1:9/default")
    assert server.returncode == 1 and server.stderr.count("\n") == 1
    assert "ClickHouse at http://127.0.0.1:9" in server.stderr


def test_rollups_are_created_on_clickhouse_and_shown_for_both(stores: tuple[Path, str]) -> None:
    path, url = stores
    calls = len(DATA.calls)
    local = command("rollups", "--store", str(path), "--json")
    assert local.returncode == 0, local.stderr
    tiers = json.loads(local.stdout)["tiers"]
    assert [tier["tier"] for tier in tiers] == ["hour", "day", "week", "month"]
    # Every stored call is in the hours; the coarser tiers get the hours as they are folded in.
    assert tiers[0]["kept"] == calls and all(0 < tier["kept"] <= calls for tier in tiers)
    before = command("rollups", "--clickhouse", url, "--json")
    assert before.returncode == 0 and json.loads(before.stdout)["tiers"] == []
    made = command("rollups", "--clickhouse", url, "--create", "--json", *FOREVER)
    assert made.returncode == 0, made.stderr
    answer = json.loads(made.stdout)
    tier_names = ("hour", "day", "week", "month")
    assert answer["created"] == {
        **dict.fromkeys(tier_names, calls),
        **dict.fromkeys((f"{name} errors" for name in tier_names), calls),
        "analysis columns": calls,
    }
    assert [(tier["tier"], tier["kept"]) for tier in answer["tiers"]] == [(tier["tier"], calls) for tier in tiers]
    assert answer["tiers"][0]["calls"] == tiers[0]["calls"]
    assert [tier["first"] for tier in answer["tiers"]] == [tier["first"] for tier in tiers]
    again = command(
        "rollups", "--clickhouse", url, "--create", "--json", *FOREVER
    )  # idempotent: nothing rolled up twice
    assert json.loads(again.stdout)["created"] == {}
    assert [tier["kept"] for tier in json.loads(again.stdout)["tiers"]] == [calls] * 4
    refused = command("rollups", "--store", str(path), "--create")
    assert refused.returncode == 2 and "--create is for ClickHouse" in refused.stderr
