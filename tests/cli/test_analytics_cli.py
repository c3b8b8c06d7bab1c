"""The analytics commands, registered on a Typer app as `sdk-telemetry` does, against the known store."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sdk_telemetry.cli.analytics import register_cli
from tests.helpers.processes import ROOT
from tests.helpers.spans import BASE, EXECUTE, LIST, LOGIN, NS, known_spans, write_spans

SINCE, UNTIL = str(BASE // NS), str(BASE // NS + 3 * 86_400)


@pytest.fixture
def app() -> typer.Typer:
    main = typer.Typer()

    @main.callback()
    def _root() -> None:
        """sdk-telemetry."""

    register_cli(main)
    return main


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    write_spans(path, known_spans())
    return path


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_funnel_json_and_table(app: typer.Typer, store: Path) -> None:
    code, out, _ = run(app, "funnel", LOGIN, LIST, EXECUTE, "--window", "1h", "--store", str(store), "--json")
    assert code == 0
    assert [step["count"] for step in json.loads(out)["steps"]] == [6, 4, 2]
    code, out, _ = run(app, "funnel", LOGIN, LIST, EXECUTE, "--store", str(store))
    assert code == 0 and "1. Client.login" in out and "66.7%" in out


def test_journeys_retention_adoption_perf(app: typer.Typer, store: Path) -> None:
    code, out, _ = run(app, "journeys", "--store", str(store), "--json")
    assert code == 0 and json.loads(out)["paths"][0]["path"] == [LOGIN, LIST, EXECUTE]
    code, out, _ = run(app, "retention", "--periods", "3", "--store", str(store), "--json")
    assert code == 0 and [c["size"] for c in json.loads(out)["cohorts"]] == [3, 1, 1]
    code, out, _ = run(app, "adoption", "--store", str(store))
    assert code == 0 and "Tools.search" in out and "up" in out
    code, out, _ = run(app, "perf", EXECUTE, "--step", "1d", "--since", SINCE, "--until", UNTIL, "--store", str(store))
    assert code == 0 and "1,000.00" in out  # the p95 of the third day


def test_journeys_of_the_ranges_last_stretch(app: typer.Typer, store: Path) -> None:
    _, whole, _ = run(app, "journeys", "--store", str(store), "--json")
    code, out, _ = run(app, "journeys", "--last", "1d", "--store", str(store), "--json")
    recent = json.loads(out)
    assert code == 0 and 0 < recent["sessions"] < json.loads(whole)["sessions"]
    start, end = (datetime.fromisoformat(recent["time_range"][edge]) for edge in ("start", "end"))
    assert end - start == timedelta(days=1)  # the day ending at the last stored call
    code, _, err = run(app, "journeys", "--last", "0s", "--store", str(store))
    assert code != 0 and "last" in err


def test_export_csv_to_stdout_and_parquet(app: typer.Typer, store: Path, tmp_path: Path) -> None:
    code, out, _ = run(app, "export", "-", "--kind", "aggregates", "--function", EXECUTE, "--step", "1d",
                       "--since", SINCE, "--until", UNTIL, "--store", str(store))  # fmt: skip
    assert code == 0
    assert [row["calls"] for row in csv.DictReader(io.StringIO(out))] == ["3.0", "1.0", "1.0"]
    target = tmp_path / "calls.parquet"
    code, _, err = run(app, "export", str(target), "--store", str(store))
    assert code == 0 and "exported 20 calls row(s)" in err
    assert target.read_bytes()[:4] == b"PAR1"


def test_errors_are_clear(app: typer.Typer, store: Path, tmp_path: Path) -> None:
    code, _, err = run(app, "funnel", LOGIN, "--store", str(store))
    assert code == 2 and "at least two steps" in err
    code, _, err = run(app, "journeys", "--store", str(tmp_path / "none.sqlite3"))
    assert code == 1 and "no store at" in err
    code, _, err = run(app, "retention", "--period", "fortnight", "--store", str(store))
    assert code == 2 and "period" in err


def test_monitors_check(app: typer.Typer, tmp_path: Path) -> None:
    code, out, _ = run(app, "monitors", str(ROOT / "examples" / "monitors.yaml"))
    assert code == 0 and "p95 of Tools.execute above 500 ms over 5m" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: x, metric: p95, above: fast}\n")
    code, _, err = run(app, "monitors", str(bad))
    assert code == 2 and "rule 1 ('x'): threshold for p95" in err
