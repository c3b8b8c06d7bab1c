"""The distribution's public surface: `__all__` names every public class of the public modules, and
none of it needs `sdk_telemetry`."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import sdk_telemetry_exporters

PUBLIC_MODULES = ("attributes", "composio", "config", "fallback", "fork", "otlp", "spool", "tinker")


def test_every_name_in_all_resolves_and_the_list_is_sorted():
    names = sdk_telemetry_exporters.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    for name in names:
        assert getattr(sdk_telemetry_exporters, name) is not None, name


def test_every_public_class_of_the_public_modules_is_in_all():
    missing = [
        f"{module_name}.{name}"
        for module_name in PUBLIC_MODULES
        for name, value in vars(importlib.import_module(f"sdk_telemetry_exporters.{module_name}")).items()
        if inspect.isclass(value)
        and value.__module__ == f"sdk_telemetry_exporters.{module_name}"
        and not name.startswith("_")
        and name not in sdk_telemetry_exporters.__all__
    ]
    assert not missing, f"public classes not in sdk_telemetry_exporters.__all__: {missing}"


def test_importing_the_package_loads_neither_sdk_telemetry_nor_upstreams_otlp_exporter():
    code = (
        "import sys, sdk_telemetry_exporters as e, sdk_telemetry_exporters.config, sdk_telemetry_exporters.fork;"
        "print(sorted(m for m in sys.modules if m == 'sdk_telemetry' or m.startswith(('sdk_telemetry.',"
        " 'opentelemetry.exporter.otlp.proto.http'))));"
        "e.OTLPSpanExporter;"
        "print('opentelemetry.exporter.otlp.proto.http' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


def test_the_exporters_entry_points_load():
    from importlib.metadata import entry_points

    for group, name, cls in (
        ("opentelemetry_traces_exporter", "composio", sdk_telemetry_exporters.ComposioSpanExporter),
        ("opentelemetry_logs_exporter", "tinker", sdk_telemetry_exporters.TinkerLogExporter),
    ):
        [entry] = [ep for ep in entry_points(group=group) if ep.name == name]
        assert entry.load() is cls
