"""Temporary: the old private name of `sdk_telemetry_exporters.config`, until `sdk_telemetry` imports that."""

from sdk_telemetry_exporters.config import ExporterSettings, parse_bool, parse_seconds

__all__ = ["ExporterSettings", "parse_bool", "parse_seconds"]
