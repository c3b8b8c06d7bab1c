"""The shipped Collector configuration is well formed and does what the README says."""

from __future__ import annotations

import re

import yaml

from tests.helpers.processes import ROOT


def _config() -> dict:
    return yaml.safe_load((ROOT / "otel-collector-config.yaml").read_text())


def test_every_pipeline_names_only_defined_components():
    config = _config()
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline[kind]:
                assert component in config[kind], f"pipeline {name} uses undefined {kind[:-1]} {component}"
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter must come first"
        assert pipeline["processors"][-1] == "batch", f"{name}: batch must come last"


def test_otlp_receivers_listen_on_the_standard_ports():
    protocols = _config()["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")


def test_secret_looking_attributes_are_deleted_and_others_kept():
    actions = _config()["processors"]["attributes/remove-secrets"]["actions"]
    pattern = re.compile(actions[0]["pattern"].replace("(?i)", ""), re.IGNORECASE)
    assert actions[0]["action"] == "delete"
    for key in (
        "password",
        "db.password",
        "api_key",
        "X-Api-Key",
        "http.request.header.authorization",
        "session_token",
        "client_secret",
        "Cookie",
        "user.ssn",
    ):
        assert pattern.fullmatch(key), key
    for key in ("service.name", "function.name", "http.method", "author", "error.type"):
        assert not pattern.fullmatch(key), key


def test_exports_to_a_backend_over_otlp_http_and_to_debug():
    exporters = _config()["exporters"]
    assert "otlphttp/backend" in exporters and "debug" in exporters
    assert exporters["otlphttp/backend"]["endpoint"].startswith("${env:SDK_TELEMETRY_BACKEND")
