"""Temporary: the old private name of `sdk_telemetry_exporters.fork`."""

from sdk_telemetry_exporters.fork import reinit_after_fork

__all__ = ["reinit_after_fork"]
