"""Helpers of the exporters' tests, standard library and OpenTelemetry SDK only.

`loopback` and `faults` are real HTTP servers on 127.0.0.1; the tests of `sdk_telemetry` (the
repository's root `tests/`) use them too, as `exporters.tests.helpers.loopback` and `.faults`.
"""
