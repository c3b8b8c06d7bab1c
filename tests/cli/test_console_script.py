"""The CLI's libraries are an extra: without them the console script says what to install, and the
library an SDK embeds never imports them."""

from __future__ import annotations

import json

import pytest

from tests.helpers.processes import ROOT, run_python

CLI_EXTRA = "pip install 'sdk-telemetry[cli]'"


@pytest.mark.parametrize("missing", ["typer", "rich"])
def test_the_console_script_without_the_cli_extra_names_it_and_exits_1(missing: str) -> None:
    result = run_python(
        f"""
        import sys
        sys.modules[{missing!r}] = None  # not installed: importing it raises ModuleNotFoundError
        sys.argv = ["sdk-telemetry", "stats"]
        import sdk_telemetry.cli
        sdk_telemetry.cli.main()
        """,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert CLI_EXTRA in line
    assert line == f"`sdk-telemetry` needs the cli extra: {CLI_EXTRA} (no module named {missing!r})"
    assert result.stdout == ""


def test_python_dash_m_runs_the_same_console_script() -> None:
    result = run_python(
        """
        import runpy, sys
        sys.modules["typer"] = None
        sys.argv = ["sdk-telemetry", "--help"]
        runpy.run_module("sdk_telemetry", run_name="__main__")
        """,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stderr
    assert CLI_EXTRA in result.stderr and "Traceback" not in result.stderr


def test_the_console_script_runs_the_app_when_the_extra_is_installed() -> None:
    result = run_python(
        """
        import sys
        sys.argv = ["sdk-telemetry", "--help"]
        import sdk_telemetry.cli
        sdk_telemetry.cli.main()
        """,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "stats" in result.stdout and "serve" in result.stdout


def test_the_library_and_the_store_import_no_cli_or_server_library() -> None:
    result = run_python(
        """
        import json, sys
        import sdk_telemetry
        import sdk_telemetry.store
        import sdk_telemetry.cli
        heavy = {"typer", "click", "rich", "starlette", "uvicorn", "mcp", "pyarrow", "clickhouse_connect", "chdb"}
        print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & heavy)))
        """,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
