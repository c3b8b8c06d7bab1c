"""A well-known library's own test suite, run plain and with that library instrumented for the
whole session: the sets of failing tests must be the same.

    python bench/host_suite.py                    # requests (its sdist ships its tests)
    python bench/host_suite.py --library requests --keep-going

The run makes a virtual environment of its own (`.venv-host-suite/`, kept between runs), installs
sdk-telemetry there from this checkout with the `http` extra, downloads the library's source
distribution from PyPI with the test dependencies it names, and runs its suite twice with pytest:
plain, then with `bench/host_suite_plugin.py`, which configures sdk-telemetry (local store, HTTP
child spans on) and runs `instrument(<library>)` before the first test. It prints the counts of
both runs, the tests whose outcome differs, and how many spans the instrumented run recorded, and
exits 1 when the failing sets differ or nothing was recorded (a vacuous run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-host-suite"


@dataclass(frozen=True)
class Library:
    """A library whose source distribution ships its test suite."""

    name: str
    version: str
    test_requirements: tuple[str, ...]
    tests: str = "tests"
    pytest_args: tuple[str, ...] = ()


LIBRARIES = {
    "requests": Library(
        "requests",
        "2.34.2",
        ("pytest>=8,<10", "pytest-httpbin==2.1.0", "httpbin~=0.10.0", "trustme", "PySocks", "pytest-mock"),
    ),
}


def _python() -> Path:
    return VENV / "bin" / "python"


def _quiet(command: list[str]) -> None:
    """Run `command`; its output is shown only when it fails (pip warns about every index it skips)."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"host-suite: {' '.join(command[:4])} … failed")


def _pip(*args: str) -> None:
    _quiet([str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args])


def _prepare(library: Library) -> Path:
    """The venv with sdk-telemetry and the library's test requirements; the unpacked source tree."""
    if not _python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    _pip("-e", str(ROOT / "exporters"), "-e", f"{ROOT}[http]", *library.test_requirements)
    source = VENV / "sources" / f"{library.name}-{library.version}"
    if not source.exists():
        downloads = VENV / "sources"
        downloads.mkdir(parents=True, exist_ok=True)
        wanted = f"{library.name}=={library.version}"
        pip = [str(_python()), "-m", "pip"]
        _quiet([*pip, "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(downloads), wanted])
        (archive,) = downloads.glob(f"{library.name}-{library.version}.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(downloads, filter="data")
    # The library itself from its sources (the suite imports the tree it tests).
    _pip("--no-deps", str(source))
    return source


@dataclass
class Run:
    outcomes: dict[str, str]  # test id -> passed / failed / error / skipped
    seconds: float
    spans: int | None = None

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for outcome in self.outcomes.values():
            found[outcome] = found.get(outcome, 0) + 1
        return dict(sorted(found.items()))

    def failing(self) -> set[str]:
        return {test for test, outcome in self.outcomes.items() if outcome in ("failed", "error")}


def _outcomes(junit: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                if outcome != "passed" and child.tag != "skipped":
                    break
        outcomes[test] = outcome
    return outcomes


def _run(library: Library, source: Path, instrumented: bool, work: Path) -> Run:
    junit = work / f"{'instrumented' if instrumented else 'plain'}.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SDK_TELEMETRY_"))}
    command = [str(_python()), "-m", "pytest", library.tests, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    command += list(library.pytest_args)
    report = work / "spans.json"
    if instrumented:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "bench"), env.get("PYTHONPATH")]))
        env["HOST_SUITE_TARGETS"] = library.name
        env["HOST_SUITE_STORE"] = str(work / "host-suite.sqlite3")
        env["HOST_SUITE_REPORT"] = str(report)
        command += ["-p", "host_suite_plugin"]
    started = time.monotonic()
    subprocess.run(command, cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    run = Run(_outcomes(junit), time.monotonic() - started)
    if instrumented:
        run.spans = json.loads(report.read_text())["spans"] if report.exists() else 0
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", choices=sorted(LIBRARIES), default="requests")
    args = parser.parse_args(argv)
    library = LIBRARIES[args.library]
    source = _prepare(library)
    with tempfile.TemporaryDirectory(prefix="host-suite-") as directory:
        work = Path(directory)
        plain = _run(library, source, instrumented=False, work=work)
        instrumented = _run(library, source, instrumented=True, work=work)
    print(f"{library.name} {library.version}: its own test suite, plain and with instrument({library.name!r})")
    print(f"  plain         {plain.counts()}  {plain.seconds:.1f} s")
    print(
        f"  instrumented  {instrumented.counts()}  {instrumented.seconds:.1f} s  ({instrumented.spans} spans recorded)"
    )
    changed = sorted(
        test
        for test in plain.outcomes.keys() | instrumented.outcomes.keys()
        if plain.outcomes.get(test) != instrumented.outcomes.get(test)
    )
    for test in changed:
        print(f"  changed: {test}: {plain.outcomes.get(test)} -> {instrumented.outcomes.get(test)}")
    same = plain.failing() == instrumented.failing()
    print(f"  failing sets identical: {same}; tests whose outcome differs: {len(changed)}")
    return 0 if same and instrumented.spans else 1


if __name__ == "__main__":
    raise SystemExit(main())
