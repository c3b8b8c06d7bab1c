"""Names of the span and resource attributes that sdk-telemetry writes and its exporters read.

Both sides import these constants, so a renamed attribute cannot silently break an exporter.
"""

from __future__ import annotations

#: Instrumentation scope of every invocation span; exporters that speak an invocation wire
#: format only map spans from this scope.
INVOCATION_SCOPE = "sdk_telemetry"

# Span attributes of an invocation.
ERROR_TYPE = "error.type"  # OpenTelemetry semantic convention
ERROR_ID = "sdk_telemetry.error.id"
ERROR_CODE = "sdk_telemetry.error.code"
#: True when the exception was already recorded by an inner instrumented call (reported once).
ERROR_PROPAGATED = "sdk_telemetry.error.propagated"
#: The recorded call arguments, as a JSON object string (only when capture is switched on).
PROPS = "sdk_telemetry.props"
#: The sampling rate a kept span was sampled at (1.0 when absent): a stored count scales by 1 / rate.
SAMPLE_RATE = "sdk_telemetry.sample_rate"
#: The session a span or event belongs to (also a resource attribute).
SESSION_ID = "session.id"
#: Why a generator's span ended early: "closed" or "abandoned".
GENERATOR_END = "sdk_telemetry.generator.end"

# Resource attributes.
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
DEPLOYMENT_ENVIRONMENT = "deployment.environment.name"
HOST_NAME = "host.name"
OS_TYPE = "os.type"
PROJECT_ID = "sdk_telemetry.project_id"
PROVIDER = "sdk_telemetry.provider"
SOURCE_SERVICE = "sdk_telemetry.source.service"
