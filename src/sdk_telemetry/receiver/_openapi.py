"""The OpenAPI description of everything `sdk-telemetry serve` answers: the ingest endpoints (their
request schemas from the pydantic models), OTLP/HTTP, the queries, health, and what the dashboard
mounts (the analytics API, the alert state, the page's data), with the shapes really answered."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter

from sdk_telemetry._version import __version__
from sdk_telemetry.receiver import _models

_REF = "#/components/schemas/{model}"
_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]
_TIME = {"type": "string", "description": "ISO-8601, or epoch seconds; between the years 1678 and 2261"}
_RANGE_TIME = {"type": "string", "description": "ISO-8601, epoch seconds, or a duration back from now (1h, 7d)"}
_ERRORS = {
    "400": "a bad body or query parameter, named (INVALID_EVENT, INVALID_JSON, INVALID_OTLP, INVALID_QUERY, ...)",
    "401": "no or unknown API key (UNAUTHORIZED)",
    "408": "the body stalled (BODY_TIMEOUT)",
    "413": "body over the size limit, measured after decompression (PAYLOAD_TOO_LARGE)",
    "415": "wrong Content-Type or Content-Encoding (UNSUPPORTED_MEDIA_TYPE)",
    "429": "a keyless Composio client above its rate (RATE_LIMITED); see Retry-After",
    "503": "the store cannot keep up or failed (OVERLOADED, STORAGE_FAILURE, BUSY); see Retry-After",
    "507": "the store's disk is full (STORAGE_FULL); see Retry-After",
}
_QUERY_ERRORS = ("400", "401")


def _ref(model: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=model)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _json(_ref("Error"), _ERRORS[status]) for status in statuses}


def _components() -> dict[str, Any]:
    number_or_null = {"type": ["number", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["status", "error"],
            "properties": {
                "status": {"const": "error"},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                },
            },
        },
        "Accepted": {
            "type": "object",
            "required": ["status", "accepted", "stored", "duplicates"],
            "properties": {
                "status": {"const": "accepted"},
                "accepted": {"type": "integer", "description": "valid items received"},
                "stored": {"type": "integer", "description": "of them, newly stored"},
                "duplicates": {"type": "integer", "description": "of them, stored before (a resend)"},
                "adjusted": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "description": "values adjusted to fit the store, by kind",
                },
            },
        },
        "MetricRecorded": {
            "type": "object",
            "required": ["status", "event_id", "timestamp", "stored", "duplicates"],
            "properties": {
                "status": {"const": "success"},
                "event_id": {"type": "string"},
                "timestamp": {"type": "string"},
                "stored": {"type": "integer"},
                "duplicates": {"type": "integer"},
            },
        },
        "Metrics": {
            "type": "object",
            "required": ["status", "metrics"],
            "properties": {
                "status": {"const": "success"},
                "metrics": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["value", "aggregation", "sample_count", "time_range"],
                        "properties": {
                            "value": {**number_or_null, "description": "null: a sum beyond the float range"},
                            "aggregation": {"type": "string"},
                            "sample_count": {"type": "integer"},
                            "time_range": {"type": "object"},
                        },
                    },
                },
            },
        },
        "Stats": {
            "type": "object",
            "required": ["status", "functions"],
            "properties": {
                "status": {"const": "success"},
                "functions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["function", "calls", "errors", "error_rate", "mean_ms", "p50_ms", "p95_ms"],
                        "properties": {
                            "function": {"type": "string"},
                            "calls": {"type": "integer"},
                            "errors": {"type": "integer"},
                            "kept": {"type": "integer"},
                            **{
                                name: {"type": "number"}
                                for name in ("error_rate", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "min_ms", "max_ms")
                            },
                        },
                    },
                },
            },
        },
        "TopErrors": {
            "type": "object",
            "required": ["status", "errors"],
            "properties": {
                "status": {"const": "success"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["error_type", "count", "kept", "functions"],
                        "properties": {
                            "error_type": {"type": "string"},
                            "count": {"type": "integer"},
                            "kept": {"type": "integer"},
                            "functions": {"type": "integer"},
                            "sample_function": {"type": "string"},
                            "sample_message": {"type": "string"},
                            "last_seen": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "version"],
            "properties": {
                "status": {"enum": ["healthy", "unhealthy"]},
                "version": {"type": "string"},
                "uptime_seconds": {"type": "number"},
                "stats": {"type": "object"},
                "store": {"type": "string"},
                "receiver": {"type": "object"},
                "problems": {"type": "array", "items": {"type": "string"}},
            },
            "description": "without an API key only status and version",
        },
        "AnalyticsError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
    }


def _parameter(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _query(summary: str, parameters: list[dict[str, Any]], answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {"200": _json(answer, "the answer"), **_errors(*_QUERY_ERRORS)},
            "security": _SECURITY,
        }
    }


def _analytics(summary: str, parameters: list[dict[str, Any]], answer: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = answer or _json({"type": "object"}, "the analysis")
    refused = {
        "400": _json(_ref("AnalyticsError"), "a bad parameter, named (INVALID_QUERY)"),
        "401": _json(_ref("AnalyticsError"), "no or unknown API key (UNAUTHORIZED)"),
        "404": _json(_ref("AnalyticsError"), "no store yet (NO_STORE)"),
    }
    return {"get": {"summary": summary, "parameters": parameters, "responses": {"200": answer, **refused}}}


@functools.cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    components = _components()

    def schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
        found = adapter.json_schema(ref_template=_REF)
        components.update(found.pop("$defs", {}))
        return found

    def ingest(summary: str, adapter: TypeAdapter[Any], answer: str = "Accepted") -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "requestBody": {"required": True, "content": {"application/json": {"schema": schema(adapter)}}},
                "responses": {
                    "200": _json(_ref(answer), "stored (or stored before)"),
                    **_errors("400", "401", "408", "413", "415", "429", "503", "507"),
                },
                "security": _SECURITY,
            }
        }

    def otlp(summary: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "stored: an empty ExportServiceResponse",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    **_errors("400", "401", "408", "413", "415", "503", "507"),
                },
                "security": _SECURITY,
            }
        }

    text, limit = {"type": "string"}, {"type": "integer", "minimum": 1, "maximum": 1000}
    filters = [_parameter(name, text) for name in ("service", "environment", "session")]
    filters += [_parameter("start", _TIME), _parameter("end", _TIME)]
    since = [_parameter("since", _RANGE_TIME), _parameter("until", _RANGE_TIME)]
    by = _parameter("by", text, "session, user (enduser.id) or a resource attribute key")
    period = _parameter("period", text, "hour, day, week or a duration such as 6h")
    aggregation = {"enum": ["MEAN", "SUM", "MIN", "MAX", "COUNT", "P50", "P95", "P99"]}
    metrics_path = {
        **ingest("Record one metric value", _models.METRIC_VALUE, "MetricRecorded"),
        **_query(
            "Aggregated metric values",
            [
                _parameter("names", text, "comma list, at most 1000"),
                _parameter("start", _TIME),
                _parameter("end", _TIME),
                _parameter("aggregation", aggregation),
            ],
            _ref("Metrics"),
        ),
    }
    paths: dict[str, Any] = {
        "/v1/metrics/invocations": ingest("Composio-style invocations (an array)", _models.INVOCATIONS),
        "/v1/errors": ingest("One failed invocation (an object with error)", _models.ERROR_REPORT),
        "/api/v1/telemetry": ingest("A Tinker-style session batch (at most 100 events)", _models.TINKER_BATCH),
        "/v1/traces": otlp("OTLP/HTTP spans"),
        "/v1/logs": otlp("OTLP/HTTP log records (events)"),
        "/v1/metrics": otlp("OTLP/HTTP metrics (stored as metric values)"),
        "/api/v1/metrics": metrics_path,
        "/api/v1/stats": _query("Per-function performance", filters, _ref("Stats")),
        "/api/v1/errors": _query(
            "Top errors by type, each error once", [*filters, _parameter("limit", limit)], _ref("TopErrors")
        ),
        "/health": {
            "get": {
                "summary": "Health; with a key also uptime, stored counts, retention, storage and the receiver",
                "responses": {
                    "200": _json(_ref("Health"), "healthy"),
                    "503": _json(_ref("Health"), "unhealthy (the store cannot be read, or its disk is full)"),
                },
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "")}}},
        "/api/v1/analytics/performance": _analytics(
            "p50/p95/p99, errors and throughput over time",
            [_parameter("function", text), _parameter("service", text), _parameter("step", text), *since],
        ),
        "/api/v1/analytics/functions": _analytics("Every function ranked", [*since, _parameter("limit", limit)]),
        "/api/v1/analytics/errors": _analytics("Top errors", [*since, _parameter("limit", limit)]),
        "/api/v1/analytics/funnel": _analytics(
            "A funnel over steps", [_parameter("steps", text), _parameter("window", text), by, *since]
        ),
        "/api/v1/analytics/journeys": _analytics(
            "Journeys",
            [
                by,
                _parameter("max_steps", {"type": "integer", "minimum": 1, "maximum": 50}),
                _parameter("last", text),
                *since,
            ],
        ),
        "/api/v1/analytics/retention": _analytics(
            "Retention by cohort", [by, period, _parameter("periods", {"type": "integer"}), *since]
        ),
        "/api/v1/analytics/adoption": _analytics(
            "Adoption by function", [by, period, _parameter("functions", text), _parameter("threshold", text), *since]
        ),
        "/api/v1/analytics/export": _analytics(
            "Export (CSV or Parquet)",
            [_parameter("kind", text), _parameter("format", text), *since],
            {
                "description": "the rows, as a file",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                },
            },
        ),
        "/api/v1/alerts": _analytics("The monitors' rules and their state", []),
        "/dashboard/api/overview": _analytics("The dashboard page's data", [_parameter("range", text)]),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "sdk-telemetry receiver", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
