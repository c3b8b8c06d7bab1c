"""The OpenAPI description of the receiver's JSON endpoints, with schemas from the pydantic models."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter

from sdk_telemetry._version import __version__
from sdk_telemetry.receiver import _models

_REF = "#/components/schemas/{model}"


def _schema(adapter: TypeAdapter[Any], components: dict[str, Any]) -> dict[str, Any]:
    schema = adapter.json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    return schema


def _error_responses() -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}
    return {
        "400": {"description": "invalid body (INVALID_EVENT, INVALID_JSON, INVALID_OTLP, ...)", **error},
        "401": {"description": "no or unknown API key (UNAUTHORIZED)", **error},
        "413": {"description": "body over the size limit, measured after decompression", **error},
        "415": {"description": "wrong Content-Type or Content-Encoding", **error},
        "503": {"description": "the store cannot keep up (OVERLOADED); see Retry-After", **error},
    }


@functools.cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {
                "status": {"const": "error"},
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                    "required": ["code", "message"],
                },
            },
        },
        "Accepted": {
            "type": "object",
            "properties": {"status": {"const": "accepted"}, "accepted": {"type": "integer"}},
        },
    }
    accepted = {
        "200": {
            "description": "stored",
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Accepted")}}},
        }
    }

    def post(summary: str, adapter: TypeAdapter[Any]) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _schema(adapter, components)}},
                },
                "responses": {**accepted, **_error_responses()},
                "security": [{"apiKey": []}, {"bearer": []}],
            }
        }

    def get(summary: str, parameters: list[str]) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "parameters": [{"name": name, "in": "query", "schema": {"type": "string"}} for name in parameters],
                "responses": {"200": {"description": "the answer"}, **_error_responses()},
                "security": [{"apiKey": []}, {"bearer": []}],
            }
        }

    filters = ["service", "environment", "session", "start", "end"]
    return {
        "openapi": "3.1.0",
        "info": {"title": "sdk-telemetry receiver", "version": __version__},
        "paths": {
            "/v1/metrics/invocations": post("Composio-style invocations (an array)", _models.INVOCATIONS),
            "/v1/errors": post("One failed invocation (an object with error)", _models.ERROR_REPORT),
            "/api/v1/telemetry": post("A Tinker-style session batch (at most 100 events)", _models.TINKER_BATCH),
            "/api/v1/metrics": {
                **post("Record one metric value", _models.METRIC_VALUE),
                **get(
                    "Aggregated metrics (aggregation: MEAN SUM MIN MAX COUNT P50 P95 P99)",
                    ["names", "start", "end", "aggregation"],
                ),
            },
            "/api/v1/stats": get("Per-function performance", filters),
            "/api/v1/errors": get("Top errors by type", [*filters, "limit"]),
            "/health": {
                "get": {
                    "summary": "Health, uptime, stored counts, retention, storage",
                    "responses": {"200": {"description": "healthy"}},
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
