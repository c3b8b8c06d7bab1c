"""Child Python processes for the tests: the repository root, a clean environment, and a runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Variables every test starts without (and children do not inherit).
CLEARED_PREFIXES = ("SDK_TELEMETRY_", "OTEL_")
CLEARED_NAMES = ("TELEMETRY_DISABLED", "DO_NOT_TRACK", "TINKER_TELEMETRY")


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a child Python: the test's (already cleaned) plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED_PREFIXES) and k not in CLEARED_NAMES}
    env["SDK_TELEMETRY_STORE"] = os.environ["SDK_TELEMETRY_STORE"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "examples"), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new interpreter (this venv's) and capture its output."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
