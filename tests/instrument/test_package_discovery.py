"""`instrument(package)` on a small package written for the test: what counts as its public
surface, submodules instrumented when the program imports them (not before), a package
instrumented from a post-import hook of its own import (as `SDK_TELEMETRY_INSTRUMENT` does), and
`uninstrument` restoring the submodules wrapped later too."""

from __future__ import annotations

import enum
import itertools
import sys
import textwrap
from pathlib import Path

import pytest
import wrapt

from sdk_telemetry import instrument, is_instrumented, uninstrument
from tests.instrument.conftest import ours

FILES = {
    "__init__.py": """
        from ._client import Client, make_client
        from ._helpers import shout
        from ._errors import AcmeError
        from .models import Thing
        __all__ = ["Client", "make_client", "AcmeError", "Thing"]
    """,
    "_client.py": """
        import json
        from ._helpers import shout

        class Transport:
            def send(self, path):
                return f"sent {path}"

        class Client(Transport):
            def things(self):
                from .resources.things import Things  # loaded on first use, as openai does
                return Things(self)

            def _private(self):
                return "private"

        def make_client():
            return Client()

        dumps = json.dumps  # a third-party function held by the package
    """,
    "_helpers.py": """
        def shout(text):
            return text.upper()
    """,
    "_errors.py": """
        class AcmeError(Exception):
            def explain(self):
                return "explained"
    """,
    "models.py": """
        import dataclasses, enum
        from typing import TypedDict, NamedTuple

        @dataclasses.dataclass
        class Thing:
            name: str
            def describe(self):
                return self.name

        class Color(enum.Enum):
            RED = 1
            def label(self):
                return "red"

        class ThingParams(TypedDict):
            name: str

        class Pair(NamedTuple):
            left: int
            right: int
    """,
    "resources/__init__.py": """
        from .things import Things
    """,
    "resources/things.py": """
        from .._helpers import shout

        class Things:
            def __init__(self, client):
                self._client = client

            def list(self):
                return self._client.send("/things")

            def create(self, name):
                return shout(name)
    """,
    "tests/__init__.py": """
        raise RuntimeError("a package's own tests are never imported")
    """,
}

_numbers = itertools.count()


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The name of a fresh copy of the package on `sys.path` (not imported yet)."""
    name = f"acme_sdk_{next(_numbers)}"
    for relative, source in FILES.items():
        path = tmp_path / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [module for module in sys.modules if module == name or module.startswith(name + ".")]:
        del sys.modules[module]


def test_the_public_surface_is_wrapped_and_data_errors_and_helpers_are_not(recorded, acme):
    package = __import__(acme)
    models = sys.modules[f"{acme}.models"]
    instrument(package)
    client = package.make_client()
    assert client.send("/x") == "sent /x"
    assert client._private() == "private"
    assert package.shout("a") == "A"  # imported from a private module, not in __all__
    assert package.AcmeError("e").explain() == "explained"
    assert models.Thing("t").describe() == "t"
    assert models.Color.RED.label() == "red"
    assert ours(recorded) == [f"{acme}.make_client", "Client.send"]
    assert not is_instrumented(vars(sys.modules[f"{acme}._client"])["dumps"])
    assert isinstance(models.Color.RED, enum.Enum)


def test_submodules_are_instrumented_when_the_program_imports_them(recorded, acme):
    package = __import__(acme)
    instrument(package)
    assert f"{acme}.resources" not in sys.modules  # discovery imported nothing
    assert f"{acme}.tests" not in sys.modules
    things = package.Client().things()  # imports the resources now
    assert things.create("box") == "BOX"
    assert things.list() == "sent /things"  # (its nested `Client.send` span: kept or collapsed)
    assert ours(recorded)[:2] == ["Client.things", "Things.create"]
    assert ours(recorded)[-1] == "Things.list"

    resources = sys.modules[f"{acme}.resources.things"]
    uninstrument(package)
    assert not any(is_instrumented(value) for value in vars(resources.Things).values())
    assert not any(is_instrumented(value) for value in vars(package.Client).values())
    recorded.clear()
    package.Client().things().list()
    assert ours(recorded) == []


def test_a_package_instrumented_by_a_hook_on_its_own_import(recorded, acme):
    wrapt.register_post_import_hook(instrument, acme)  # what SDK_TELEMETRY_INSTRUMENT=<package> does
    package = __import__(acme)
    assert is_instrumented(vars(package.Client)["things"])
    package.Client().things().create("x")
    assert ours(recorded) == ["Client.things", "Things.create"]


def test_instrumenting_the_package_twice_wraps_each_callable_once(recorded, acme):
    package = __import__(acme)
    instrument(package)
    instrument(package)
    package.Client().things().create("y")
    assert ours(recorded) == ["Client.things", "Things.create"]
