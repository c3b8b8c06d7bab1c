"""Instrumentation: which callables `instrument()` wraps and how it patches them (`targets`), the
public client surface of a module or package (`surface`), the wrapper objects and how they pickle
and copy (`wrappers`), how each call runs (`calls`: the sync, async and generator call paths),
streams returned by calls (`streams`), the span of one call and its ids (`call_span`), what is
recorded of an error (`errors`), the invocation metrics (`metrics`), acting on `module:attribute`
targets once their module is imported (`imports`), and looking past the wrapper's frames (`frames`)."""

from sdk_telemetry.instrument.call_span import UNSET_STATUS, CallSpan, PrivateIdGenerator
from sdk_telemetry.instrument.calls import refresh as refresh_tracer
from sdk_telemetry.instrument.calls import use_tracer
from sdk_telemetry.instrument.errors import claim_error_id, error_type
from sdk_telemetry.instrument.frames import WRAPPER_PATHS, stacklevel, warn
from sdk_telemetry.instrument.imports import resolve, when_importable
from sdk_telemetry.instrument.targets import instrument, is_instrumented, uninstrument, uninstrument_all

__all__ = [
    "UNSET_STATUS",
    "WRAPPER_PATHS",
    "CallSpan",
    "PrivateIdGenerator",
    "claim_error_id",
    "error_type",
    "instrument",
    "is_instrumented",
    "refresh_tracer",
    "resolve",
    "stacklevel",
    "uninstrument",
    "uninstrument_all",
    "use_tracer",
    "warn",
    "when_importable",
]
