"""Issue 15, points 8-11: read commands never change a file, and every failure is one line naming
the file and the problem, through the real `sdk-telemetry` commands on real store files."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdk_telemetry._version import __version__
from sdk_telemetry.cli.commands import app
from sdk_telemetry.store import _sqlite
from tests.helpers.processes import child_env
from tests.helpers.store_data import load
from tests.helpers.week import write_week

runner = CliRunner()

#: Every command that only reads the store, with the arguments it needs.
READ_COMMANDS = [
    ["stats"],
    ["errors"],
    ["errors", "--stack"],
    ["metrics"],
    ["health"],
    ["perf"],
    ["funnel", "Api.get", "Api.put"],
    ["journeys"],
    ["retention"],
    ["adoption"],
    ["calls"],
    ["trace", "00000000000000000000000000000002"],
    ["sessions"],
    ["session", "s1"],
    ["tail", "--no-follow"],
]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def known_store(tmp_path: Path) -> Path:
    path = tmp_path / "known.sqlite3"
    connection = _sqlite.connect(path)
    load(connection)
    connection.close()
    return path


def unrelated_file(tmp_path: Path) -> Path:
    path = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.commit()
    connection.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_refuses_an_unrelated_sqlite_file_and_leaves_it_unchanged(
    tmp_path: Path, command: list[str]
) -> None:
    path = unrelated_file(tmp_path)
    before = digest(path)
    code, out, err = run(*command, "--store", str(path))
    assert (code, out) == (1, "")
    assert err == f"sdk-telemetry: {path} is not a telemetry store (it has no otel_traces table)\n"
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite3"]  # no -wal, no -shm left
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    connection.close()


def test_export_refuses_an_unrelated_file_too(tmp_path: Path) -> None:
    path = unrelated_file(tmp_path)
    before = digest(path)
    code, _, err = run("export", str(tmp_path / "a.csv"), "--store", str(path))
    assert code == 1
    assert err == f"sdk-telemetry: {path} is not a telemetry store (it has no otel_traces table)\n"
    assert digest(path) == before
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_on_a_missing_file_is_one_line(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "nothing.sqlite3"
    code, out, err = run(*command, "--store", str(path))
    assert (code, out, err) == (1, "", f"No telemetry recorded yet: no store at {path}.\n")
    assert not path.exists()


def test_reading_a_real_store_changes_none_of_its_bytes(tmp_path: Path) -> None:
    path = known_store(tmp_path)
    before = digest(path)
    for command in READ_COMMANDS:
        code, out, _ = run(*command, "--store", str(path))
        assert code == 0, command
        assert out, command
    assert digest(path) == before


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_random_bytes_are_one_line_naming_the_file(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "random.sqlite3"
    path.write_bytes(bytes(range(256)) * 64)
    code, out, err = run(*command, "--store", str(path))
    assert (code, out) == (1, "")
    assert err == f"sdk-telemetry: {path} cannot be read as a telemetry store: file is not a database\n"


def test_a_truncated_store_is_one_line_for_every_command_through_the_console_script(tmp_path: Path) -> None:
    path = tmp_path / "week.sqlite3"
    write_week(path, time.time_ns())
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    with path.open("r+b") as file:  # keep the header and schema, lose most of the data pages
        file.truncate(path.stat().st_size // 3)
    for command in READ_COMMANDS:
        code, out, err = run(*command, "--store", str(path))
        assert (code, out) == (1, ""), command
        assert err == f"sdk-telemetry: {path} cannot be read as a telemetry store: database disk image is malformed\n"
    for command in (["stats"], ["perf"], ["export", str(tmp_path / "a.csv")]):
        done = subprocess.run(
            [sys.executable, "-m", "sdk_telemetry", *command, "--store", str(path)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.count("\n") == 1, (command, done.stderr)
        assert done.stderr.startswith(f"sdk-telemetry: {path} cannot be read as a telemetry store: "), command
        assert "malformed" in done.stderr, command


def test_export_blames_the_missing_directory_not_the_store(tmp_path: Path) -> None:
    code, out, err = run("export", "/nonexistent/dir/a.csv", "--store", str(known_store(tmp_path)))
    assert (code, out, err) == (
        1,
        "",
        "sdk-telemetry export: cannot write /nonexistent/dir/a.csv: no directory /nonexistent/dir\n",
    )


def test_export_refuses_a_suffix_it_cannot_write(tmp_path: Path) -> None:
    out_file = tmp_path / "x.json"
    code, _, err = run("export", str(out_file), "--store", str(known_store(tmp_path)))
    assert code == 2
    assert err == (
        f"sdk-telemetry export: cannot tell the format of {out_file} from its suffix: use a .csv or .parquet file"
        " (or --format csv|parquet)\n"
    )
    assert not out_file.exists()
    code, _, _ = run("export", str(out_file), "--format", "csv", "--store", str(known_store(tmp_path)))
    assert code == 0
    assert out_file.read_text().startswith("timestamp") or "," in out_file.read_text().splitlines()[0]


def test_stats_for_a_service_never_recorded_says_so(tmp_path: Path) -> None:
    path = known_store(tmp_path)
    code, out, err = run("stats", "--store", str(path), "--service", "svc-z")
    assert (code, out) == (1, "")
    assert err == (
        f"sdk-telemetry: nothing was ever recorded for service 'svc-z' in {path}; did you mean svc-c, svc-b, svc-a?\n"
    )
    code, _, err = run("stats", "--store", str(path), "--service", "nope")
    assert (
        err
        == f"sdk-telemetry: nothing was ever recorded for service 'nope' in {path} (recorded: svc-a, svc-b, svc-c)\n"
    )
    code, out, _ = run(
        "stats", "--store", str(path), "--service", "svc-a", "--since", "2000-01-01", "--until", "2000-01-02"
    )
    assert code == 0  # a recorded service with nothing in the range is an empty table, not an error
    assert "No instrumented calls recorded yet." in out
    code, _, err = run("errors", "--store", str(path), "--environment", "prod")
    assert code == 1
    assert err.startswith("sdk-telemetry: nothing was ever recorded for environment 'prod'")


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (["perf", "Api.gte"], "no function 'Api.gte' was ever recorded; did you mean Api.get, Api.outer, Api.put?"),
        (["funnel", "Api.get", "Api.putt"], "no function or event 'Api.putt' was ever recorded; did you mean Api.put"),
        (["funnel", "Api.get", "Zzz"], "no function or event 'Zzz' was ever recorded"),
    ],
)
def test_an_unknown_function_says_so_with_close_names(tmp_path: Path, command: list[str], line: str) -> None:
    code, out, err = run(*command, "--store", str(known_store(tmp_path)))
    assert (code, out) == (2, "")
    assert err.startswith(f"sdk-telemetry: {line}")
    assert err.count("\n") == 1
    assert err.endswith(("?\n", "recorded\n"))


def test_version() -> None:
    code, out, _ = run("--version")
    assert (code, out) == (0, f"sdk-telemetry {__version__}\n")


def _table_rows(out: str) -> list[list[str]]:
    """The body rows of Rich tables in `out`, cells stripped."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in out.splitlines() if line.startswith("│")]


def test_journeys_shows_paths_transitions_and_where_sessions_end(tmp_path: Path) -> None:
    path = tmp_path / "week.sqlite3"
    write_week(path, time.time_ns())
    code, out, _ = run("journeys", "--store", str(path), "--json")
    assert code == 0
    expected = json.loads(out)
    code, out, _ = run("journeys", "--store", str(path))
    assert code == 0
    assert f"Journeys — {expected['sessions']:,} sessions" in out
    assert "Transitions (from a call to the next)" in out
    assert "Where sessions end — their last call" in out
    rows = _table_rows(out)
    paths = [[" → ".join(p["path"]), f"{p['count']:,}", f"{p['share']:.1%}"] for p in expected["paths"]]
    moves = [[m["from"], m["to"], f"{m['count']:,}"] for m in expected["transitions"]]
    ends = [[e["function"], f"{e['count']:,}", f"{e['share']:.1%}"] for e in expected["exits"]]
    assert moves and ends
    assert rows == paths + moves + ends


def test_perf_shows_every_bucket_and_the_whole_range(tmp_path: Path) -> None:
    path = tmp_path / "week.sqlite3"
    write_week(path, time.time_ns())
    code, out, _ = run("perf", "--store", str(path), "--step", "1d", "--json")
    assert code == 0
    expected = json.loads(out)
    code, out, _ = run("perf", "--store", str(path), "--step", "1d")
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == [
        "bucket", "calls", "errors", "error rate", "calls/min", "p50 ms", "p95 ms", "p99 ms",
    ]  # fmt: skip
    rows = _table_rows(out)
    assert [row[0] for row in rows] == [bucket["start"] for bucket in expected["buckets"]] + ["whole range"]
    total = expected["summary"]
    assert rows[-1][1:4] == [f"{total['calls']:,.0f}", f"{total['errors']:,.0f}", f"{total['error_rate']:.1%}"]
    assert rows[-1][4] == f"{total['throughput_per_min']:,.2f}"
    assert rows[-1][6] == f"{total['p95_ms']:,.2f}"
    first = expected["buckets"][0]
    assert rows[0][4] == f"{first['throughput_per_min']:,.2f}"


def test_monitors_warns_of_a_rule_about_a_function_never_recorded(tmp_path: Path) -> None:
    rules = tmp_path / "monitors.yaml"
    rules.write_text(
        "rules:\n  - name: slow_gets\n    function: Api.gte\n    metric: p95\n    above: 100\n    window: 5m\n"
        "  - name: failing_puts\n    function: Api.put\n    metric: error_rate\n    above: 0.5\n    window: 5m\n"
    )
    code, out, err = run("monitors", str(rules), "--store", str(known_store(tmp_path)))
    assert code == 0
    assert err == (
        "sdk-telemetry monitors: monitor rule 'slow_gets': no calls of 'Api.gte' recorded yet; "
        "did you mean Api.get, Api.outer, Api.put?\n"
    )
    assert "slow_gets" in out and "failing_puts" in out
