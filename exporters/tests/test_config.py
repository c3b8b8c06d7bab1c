"""`sdk_telemetry_exporters.config`: the one reading of each kind of value, and the settings built from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sdk_telemetry_exporters.config import (
    ExporterSettings,
    otlp_endpoint_configured,
    parse_bool,
    parse_headers,
    parse_list,
    parse_seconds,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ("", ()),
        (" , ,", ()),
        ("a", ("a",)),
        (" a , b ,, c ", ("a", "b", "c")),
        (["x ", " ", "y"], ("x", "y")),
        (("only",), ("only",)),
        (iter(["g1", "g2 "]), ("g1", "g2")),
    ],
)
def test_parse_list_strips_and_leaves_out_blanks(value, expected):
    assert parse_list(value) == expected


@pytest.mark.parametrize(("value", "expected"), [("1", True), (" Yes ", True), ("off", False), ("maybe", None)])
def test_parse_bool(value, expected):
    assert parse_bool(value) is expected


def test_parse_seconds_keeps_the_default_for_what_is_not_a_positive_number(caplog):
    assert parse_seconds("2.5", 1.0, "X") == 2.5
    for bad in ("", "abc", "-1", "0", "nan", "inf"):
        assert parse_seconds(bad, 1.0, "X") == 1.0
    assert "X='abc' is not a positive number" in caplog.text


def test_parse_headers_decodes_and_skips_malformed_items(caplog):
    assert parse_headers(" a=1 , b=two%20words,,novalue, =x") == {"a": "1", "b": "two words"}
    assert "ignoring malformed header 'novalue'" in caplog.text


def test_settings_from_the_environment_then_arguments(tmp_path: Path):
    environ = {
        "SDK_TELEMETRY_ENDPOINT": " http://127.0.0.1:9 ",
        "SDK_TELEMETRY_HEADERS": "x-a=1",
        "SDK_TELEMETRY_TIMEOUT": "2",
        "SDK_TELEMETRY_SPOOL_DIR": str(tmp_path / "spool"),
    }
    settings = ExporterSettings.from_env(environ)
    assert settings.endpoint == "http://127.0.0.1:9"
    assert settings.headers == {"x-a": "1"} and settings.timeout == 2.0
    assert settings.spool_dir == tmp_path / "spool"
    given = ExporterSettings.resolve({"endpoint": "http://h", "headers": {"x-b": "2"}, "timeout": 1}, environ)
    assert given.endpoint == "http://h" and given.headers == {"x-a": "1", "x-b": "2"} and given.timeout == 1.0
    assert ExporterSettings.from_env({"SDK_TELEMETRY_SPOOL": "off"}).spool_dir is None


def test_an_otlp_endpoint_is_configured_by_either_variable():
    assert not otlp_endpoint_configured({})
    assert otlp_endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert otlp_endpoint_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
