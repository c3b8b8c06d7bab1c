"""`instrument` keeps the types of what it wraps for type checkers: a decorated function keeps its
signature (`@instrument`, `@instrument(name=...)`), `instrument(function)` returns the same type,
and a call with wrong argument types fails to type-check. Checked with the installed mypy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

import sdk_telemetry

SOURCE_ROOT = Path(sdk_telemetry.__file__).resolve().parents[1]

GOOD = """
from sdk_telemetry import instrument

@instrument
def add(x: int, y: int = 1) -> int:
    return x + y

@instrument(name="acme.greet", capture_args=True)
def greet(name: str, *, loud: bool = False) -> str:
    return name.upper() if loud else name

async def fetch(url: str) -> bytes:
    return b""

class Client:
    @instrument
    def get(self, key: str) -> list[str]:
        return [key]

@instrument(include="get")
class Other:
    def get(self) -> int:
        return 1

traced_fetch = instrument(fetch)
traced_class = instrument(Client)
total: int = add(1, y=2)
text: str = greet("ann", loud=True)
items: list[str] = Client().get("k")
number: int = Other().get()
reveal_type(add)
reveal_type(greet)
reveal_type(traced_fetch)
reveal_type(traced_class)
"""

BAD = """
from sdk_telemetry import instrument

@instrument
def add(x: int, y: int = 1) -> int:
    return x + y

@instrument(name="acme.greet")
def greet(name: str) -> str:
    return name

add("one")
wrong: str = add(1)
greet(name=3)
"""


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy's messages on the two snippets (one run: analysing sdk_telemetry once takes a while)."""
    folder = tmp_path_factory.mktemp("typing")
    for name, source in (("good", GOOD), ("bad", BAD)):
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    config = folder / "mypy.ini"
    config.write_text(
        f"[mypy]\nstrict = True\nfollow_imports = silent\nmypy_path = {SOURCE_ROOT}\n"
        "[mypy-opentelemetry.*,sdk_telemetry_exporters.*,orjson.*,urllib3.*,wrapt.*]\nfollow_imports = skip\n"
    )
    stdout, stderr, _ = mypy_api.run(
        [
            "--config-file", str(config),
            "--cache-dir", str(folder / "cache"),
            str(folder / "good.py"),
            str(folder / "bad.py"),
        ]
    )  # fmt: skip
    assert not stderr, stderr
    lines: dict[str, list[str]] = {"good": [], "bad": []}
    for line in stdout.splitlines():
        for name in lines:
            if line.startswith(str(folder / f"{name}.py")):
                lines[name].append(line.split(": ", 1)[1])
    return lines


def test_decorated_and_instrumented_functions_keep_their_signatures(checked):
    good = checked["good"]
    assert [line for line in good if line.startswith("error")] == []
    revealed = [line for line in good if line.startswith("note: Revealed type")]
    assert revealed == [
        'note: Revealed type is "def (x: int, y: int =) -> int"',
        'note: Revealed type is "def (name: str, *, loud: bool =) -> str"',
        'note: Revealed type is "def (url: str) -> typing.Coroutine[Any, Any, bytes]"',
        'note: Revealed type is "def () -> good.Client"',
    ]


def test_calls_with_wrong_argument_types_fail_to_type_check(checked):
    errors = [line for line in checked["bad"] if line.startswith("error")]
    assert errors == [
        'error: Argument 1 to "add" has incompatible type "str"; expected "int"  [arg-type]',
        'error: Incompatible types in assignment (expression has type "int", variable has type "str")  [assignment]',
        'error: Argument "name" to "greet" has incompatible type "int"; expected "str"  [arg-type]',
    ]
