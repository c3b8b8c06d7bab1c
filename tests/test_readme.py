"""The README and `examples/` run as written: every Python block and every shell command.

Each ```python block of README.md runs in a fresh interpreter of this venv, in a temporary
directory, with `examples/` on the path and a private `SDK_TELEMETRY_STORE`. Each ```bash (sh,
console) block runs in bash with `set -eo pipefail`, from a temporary directory laid out like a
clone after the quick start (`.venv` is this venv, `examples/` the repository's, and the store
holds what `examples/quickstart.py` recorded), with this venv's bin first on PATH. The shell
commands in `examples/` (the indented blocks of a module docstring, the indented `#` comment
lines of a YAML file) and the example scripts themselves run the same way.

An HTML comment right before a block steers it:

- `<!-- readme-test: skip reason=... -->` — it cannot run here (a ClickHouse server, the network);
- `<!-- readme-test: background -->` — it runs until stopped (`serve`): started, checked to be
  still running (and to have printed the `# ...` lines the README shows), then stopped; blocks
  whose command is `sdk-telemetry serve`/`mcp` or a following `tail` are treated so unmarked;
- `<!-- readme-test: env NAME=value -->` — a variable the block runs with;
- `<!-- readme-test: pytest -->` — the block is test files (each after a `# name.py` line), run by pytest;
- `<!-- readme-test: prelude ... -->` — Python run before the block (the names a block takes
  from the reader's own code), shown in the comment itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.processes import ROOT

README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
VENV = Path(sys.prefix)
BLOCK_TIMEOUT = 90.0
BACKGROUND_SECONDS = 20.0  # a background block must print its lines within this, and still run

SHELL_LANGUAGES = {"bash", "sh", "console", "shell"}
FENCE = re.compile(r"^```([\w-]*)\s*$")
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(\w+)(.*?)-->", re.DOTALL)
LONG_RUNNING = re.compile(r"sdk-telemetry\s+(serve|mcp)\b|sdk-telemetry\s+tail\b(?!.*--no-follow)")


@dataclass
class Block:
    """One code block (or one example's commands) and how to run it."""

    source: str  # "README.md:57" or "examples/monitors.yaml"
    language: str  # "python" or "bash"
    code: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def background(self) -> bool:
        return "background" in self.directives or bool(LONG_RUNNING.search(self.code))

    def __str__(self) -> str:
        return self.source


def readme_blocks(path: Path = README) -> list[Block]:
    """The fenced Python and shell blocks of a Markdown file, with the directives right before them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        language = opening.group(1).lower()
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        if language == "python" or language in SHELL_LANGUAGES:
            blocks.append(
                Block(
                    source=f"{path.name}:{index + 1}",
                    language="python" if language == "python" else "bash",
                    code="\n".join(lines[index + 1 : end]) + "\n",
                    directives=_directives_before(lines, index),
                )
            )
        index = end + 1
    return blocks


def _directives_before(lines: list[str], index: int) -> dict[str, str]:
    """The `readme-test:` comments right before a block (blank lines between allowed)."""
    directives: dict[str, str] = {}
    end = index
    while True:
        while end > 0 and not lines[end - 1].strip():
            end -= 1
        if end == 0 or not lines[end - 1].rstrip().endswith("-->"):
            return directives
        start = end - 1
        while start > 0 and "<!--" not in lines[start]:
            start -= 1
        for match in DIRECTIVE.finditer("\n".join(lines[start:end])):
            directives.setdefault(match.group(1), match.group(2).strip())
        end = start


def example_command_blocks() -> list[Block]:
    """The shell commands documented in `examples/`: indented blocks of docstrings and YAML comments."""
    blocks = []
    for path in sorted(EXAMPLES.iterdir()):
        if path.suffix == ".py":
            lines = path.read_text(encoding="utf-8").split('"""')[1].splitlines()
        elif path.suffix in {".yaml", ".yml"}:
            lines = [line[1:] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
        else:
            continue
        commands = [line[4:] for line in lines if line.startswith("    ") and line.strip()]
        if commands:
            code = "\n".join(commands).replace("\\\\\n", "\\\n") + "\n"
            blocks.append(Block(source=f"examples/{path.name}", language="bash", code=code))
    return blocks


def example_scripts() -> list[Path]:
    return sorted(path for path in EXAMPLES.glob("*.py") if "__main__" in path.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Run:
    returncode: int | None  # None: a background block that was still running when stopped
    output: str  # stdout and stderr together
    port: str  # the port `serve` got (the README shows the default, 4319)

    def describe(self, block: Block) -> str:
        return f"{block} ({block.language}) exited {self.returncode}:\n{block.code}\n--- output ---\n{self.output}"


class Clone:
    """A directory laid out like a clone after the quick start, and the environment its commands get."""

    def __init__(self, root: Path, store_after_quickstart: Path) -> None:
        self.root = root
        self.store_after_quickstart = store_after_quickstart

    def workspace(self, name: str) -> tuple[Path, dict[str, str]]:
        """A fresh directory for one block: `.venv`, `examples/`, its own copy of the store, its own port."""
        directory = self.root / re.sub(r"\W", "_", name)
        directory.mkdir()
        (directory / ".venv").symlink_to(VENV)
        (directory / "examples").symlink_to(EXAMPLES)
        store = directory / "home" / "telemetry.sqlite3"
        store.parent.mkdir()
        if self.store_after_quickstart.exists():
            shutil.copy(self.store_after_quickstart, store)
        return directory, block_env(store, directory / "home")


def block_env(store: Path, home: Path) -> dict[str, str]:
    """The environment of a block: clean of telemetry settings, this venv first, a private store and port."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SDK_TELEMETRY_", "OTEL_")) and key not in {"DO_NOT_TRACK", "TELEMETRY_DISABLED"}
    }
    env["PATH"] = os.pathsep.join([str(VENV / "bin"), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES), env.get("PYTHONPATH")]))
    env["SDK_TELEMETRY_STORE"] = str(store)
    env["SDK_TELEMETRY_SERVE_PORT"] = str(free_port())
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env.pop("VIRTUAL_ENV", None)
    return env


def shown_output(block: Block) -> list[str]:
    """The lines a shell block shows as output: `# ...` comment lines on their own."""
    if block.language != "bash":
        return []
    return [line[2:] for line in block.code.splitlines() if line.startswith("# ")]


def printed_output(block: Block) -> list[str]:
    """What a Python block shows it prints: the `# ...` comment lines right after a `print(...)` line."""
    shown: list[str] = []
    lines = block.code.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("print("):
            comment = []
            for following in lines[index + 1 :]:
                if not following.strip().startswith("#"):
                    break
                comment.append(following.strip().lstrip("#").strip())
            if comment:
                shown.append(" ".join(comment))
    return shown


def _printed(shown: str, output: str) -> bool:
    """`shown` (a repr or JSON, with `...` for what varies) is in `output`, quotes and spacing aside."""

    def normal(text: str) -> str:
        return re.sub(r"\s+", " ", text.replace('"', "'"))

    pattern = ".*?".join(re.escape(part) for part in normal(shown).split("..."))
    return re.search(pattern, normal(output)) is not None


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> Run:
    if "pytest" in block.directives:
        for name, text in _files(block.code).items():
            (cwd / name).write_text(text, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "."]
    elif block.language == "python":
        script = cwd / "block.py"
        script.write_text(block.directives.get("prelude", "") + "\n" + block.code, encoding="utf-8")
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    env = {**env, **dict(re.findall(r"(\w+)=(\S*)", block.directives.get("env", "")))}
    log = cwd / "output.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        if block.background:
            returncode = _wait_in_background(process, block, env, log)
        else:
            try:
                returncode = process.wait(timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                _stop(process, signal.SIGKILL)
                returncode = -9
    output = log.read_text(encoding="utf-8", errors="replace")
    if returncode == -9:
        output += f"\n[timed out after {BLOCK_TIMEOUT} s]"
    return Run(returncode, output, env["SDK_TELEMETRY_SERVE_PORT"])


def _files(code: str) -> dict[str, str]:
    """A block made of files, each introduced by a `# name.py` line."""
    files: dict[str, list[str]] = {}
    current: list[str] = []
    for line in code.splitlines():
        name = re.fullmatch(r"# (\w+\.py)", line.strip())
        if name:
            current = files.setdefault(name.group(1), [])
        else:
            current.append(line)
    assert files, "a pytest block names its files with `# name.py` lines"
    return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


def _wait_in_background(process: subprocess.Popen[bytes], block: Block, env: dict[str, str], log: Path) -> int | None:
    """Lets a long-running block start and print the lines it shows, then stops it (SIGINT, as Ctrl-C)."""
    expected = [line.replace("4319", env["SDK_TELEMETRY_SERVE_PORT"]) for line in shown_output(block)]
    deadline = time.monotonic() + BACKGROUND_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        output = log.read_text(encoding="utf-8", errors="replace")
        if expected and all(_shows(line, output) for line in expected):
            break
        time.sleep(0.2)
    if process.poll() is not None:
        return process.returncode
    _stop(process, signal.SIGINT)
    return None


def _stop(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signals the block's whole process group (bash and what it started), then waits for it."""
    os.killpg(process.pid, signum)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _shows(expected: str, output: str) -> bool:
    """`expected` is a line of `output`, where `~/.local/share/...` in the README stands for any path."""
    pattern = re.escape(expected).replace(re.escape("~/.local/share/sdk-telemetry/telemetry.sqlite3"), r"\S+")
    return re.search(pattern, output) is not None


README_BLOCKS = readme_blocks()
RUNNABLE = [block for block in README_BLOCKS + example_command_blocks() if "skip" not in block.directives]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Clone:
    """A clone after the quick start: `examples/quickstart.py` has run into the store."""
    root = tmp_path_factory.mktemp("clone")
    home = root / "quickstart-home"
    store = home / "telemetry.sqlite3"
    home.mkdir()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        env=block_env(store, home),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert store.exists()
    return Clone(root, store)


@pytest.fixture(scope="module")
def runs(clone: Clone) -> dict[str, Run]:
    """Every runnable block, run in parallel threads (each in its own process and directory)."""

    def run(block: Block) -> tuple[str, Run]:
        cwd, env = clone.workspace(block.source)
        return block.source, run_block(block, cwd, env)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, RUNNABLE))


@pytest.mark.parametrize("block", RUNNABLE, ids=str)
def test_block_runs_as_written(block: Block, runs: dict[str, Run]) -> None:
    result = runs[block.source]
    if block.background:
        assert result.returncode is None, "a long-running block stopped by itself\n" + result.describe(block)
        for line in shown_output(block):
            assert _shows(line.replace("4319", result.port), result.output), (
                f"{line!r} not printed\n" + result.describe(block)
            )
    else:
        assert result.returncode == 0, result.describe(block)
        for line in shown_output(block):
            assert _shows(line, result.output), f"{line!r} not printed\n" + result.describe(block)
        for shown in printed_output(block):
            assert _printed(shown, result.output), f"{shown!r} not printed\n" + result.describe(block)
    if block.language == "python":
        assert "Traceback" not in result.output, result.describe(block)


def test_every_skip_says_why() -> None:
    skipped = [block for block in README_BLOCKS if "skip" in block.directives]
    for block in skipped:
        assert block.directives["skip"].startswith("reason="), f"{block}: skip without reason="
    assert len(skipped) <= 4, [str(block) for block in skipped]  # skips are for what cannot run here only


def test_blocks_are_found() -> None:
    assert any(printed_output(block) for block in README_BLOCKS)
    languages = {block.language for block in README_BLOCKS}
    assert languages == {"python", "bash"}
    assert len(README_BLOCKS) >= 15
    assert {block.source for block in example_command_blocks()} == {
        "examples/instrumented_app.py",
        "examples/monitors.yaml",
        "examples/quickstart.py",
    }


def quickstart_table() -> Iterator[tuple[str, str, str, str]]:
    """The function, calls, errors and error rate of each row of the quick start's table in the README."""
    text = README.read_text(encoding="utf-8")
    table = text.split("Calls by function", 1)[1].split("```", 1)[0]
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if len(cells) == 9 and cells[1].isdigit():
            yield cells[0], cells[1], cells[2], cells[3]


def test_quickstart_prints_the_table_the_readme_shows(clone: Clone, tmp_path: Path) -> None:
    env = block_env(tmp_path / "telemetry.sqlite3", tmp_path)
    result = subprocess.run(
        [str(VENV / "bin" / "python"), "examples/quickstart.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    rows = list(quickstart_table())
    assert len(rows) == 4
    for function, calls, errors, rate in rows:
        assert re.search(
            rf"│ {re.escape(function)}\s+│\s+{calls} │\s+{errors} │\s+{re.escape(rate)} │", result.stdout
        ), f"{function}: {calls} calls, {errors} errors, {rate} not in\n{result.stdout}"
    assert "Calls by function" in result.stdout


def test_example_scripts_run(clone: Clone) -> None:
    for script in example_scripts():
        cwd, env = clone.workspace(f"script-{script.stem}")
        result = subprocess.run(
            [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT
        )
        assert result.returncode == 0, f"{script.name}:\n{result.stdout}\n{result.stderr}"


def test_opentelemetry_instrument_block_instruments_without_warnings(runs: dict[str, Run]) -> None:
    [block] = [block for block in README_BLOCKS if "opentelemetry-instrument" in block.code]
    output = runs[block.source].output
    assert "instrumented: True" in output, output
    assert "executed: 20 ok, 2 failed" in output, output
    assert "Tools.execute " in output, output  # the stats table after the run
    assert "already instrumented" not in output, output
    assert "WARNING" not in output.upper().replace("WARNINGS", ""), output


def test_captured_arguments_are_what_the_comment_shows(tmp_path: Path) -> None:
    """The `# props: {...}` comment of the README's `capture_args=True` example is what is recorded."""
    [block] = [block for block in README_BLOCKS if "capture_args=True" in block.code]
    lines = block.code.splitlines()
    decorated = next(i for i, line in enumerate(lines) if "capture_args=True" in line)
    definition, comment = lines[decorated + 1].split("# props: ")
    code = f"""
import json
from sdk_telemetry import instrument
from sdk_telemetry.testing import capture_telemetry

{lines[decorated]}
{definition}

with capture_telemetry() as captured:
    upload_file("a.txt", "s3cret-value")
[span] = captured.spans
print(span.attributes["sdk_telemetry.props"])
"""
    env = block_env(tmp_path / "telemetry.sqlite3", tmp_path)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    recorded = json.loads(result.stdout)
    shown = json.loads(comment)
    assert recorded["token"] == shown["token"], (recorded, shown)
    assert set(recorded) == set(shown)
    assert "s3cret-value" not in result.stdout


def test_monitors_yaml_block_is_a_valid_monitors_file(tmp_path: Path) -> None:
    """The README's ```yaml rules are accepted by `sdk-telemetry monitors`, which exits 2 on a bad rule."""
    text = README.read_text(encoding="utf-8")
    [rules] = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    (tmp_path / "monitors.yaml").write_text(rules, encoding="utf-8")
    (tmp_path / "broken.yaml").write_text(rules.replace("above: 5%", "above: 5"), encoding="utf-8")
    env = block_env(tmp_path / "telemetry.sqlite3", tmp_path)
    command = [str(VENV / "bin" / "sdk-telemetry"), "monitors"]
    good = subprocess.run([*command, "monitors.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True)
    broken = subprocess.run([*command, "broken.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "slow-execute" in good.stdout and "error-rate" in good.stdout, good.stdout
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "error-rate" in broken.stdout + broken.stderr
