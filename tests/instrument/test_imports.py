"""`module:attribute` targets: resolved now or once their module is imported, never breaking the host's import."""

from __future__ import annotations

import logging
import sys
import types

import pytest

from sdk_telemetry.instrument.imports import resolve, split_target, walk, when_importable


def test_a_target_splits_into_its_module_and_attribute_path() -> None:
    assert split_target(" pkg.mod : Client.method ") == ("pkg.mod", ("Client", "method"))
    assert split_target("pkg.mod") == ("pkg.mod", ())
    assert walk(types, ("SimpleNamespace", "__name__")) == "SimpleNamespace"
    assert resolve("collections:OrderedDict.fromkeys") == __import__("collections").OrderedDict.fromkeys


def test_a_module_whose_lookup_fails_is_logged_and_its_import_still_succeeds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = types.ModuleType("sdk_telemetry_test_lazy")

    def broken(name: str) -> object:
        raise RuntimeError(f"lazy attribute {name} failed")

    module.__getattr__ = broken  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    caplog.set_level(logging.ERROR, logger="sdk_telemetry")
    seen: list[object] = []
    when_importable(f"{module.__name__}:Client", seen.append)
    assert seen == []
    assert "looking up sdk_telemetry_test_lazy:Client failed" in caplog.text


def test_a_missing_attribute_is_named_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = types.ModuleType("sdk_telemetry_test_plain")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    caplog.set_level(logging.ERROR, logger="sdk_telemetry")
    seen: list[object] = []
    when_importable(f"{module.__name__}:Missing.thing", seen.append)
    assert seen == []
    assert "sdk_telemetry_test_plain has no attribute 'Missing.thing'; not instrumented" in caplog.text
