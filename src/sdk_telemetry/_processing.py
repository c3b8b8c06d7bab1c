"""What happens to a finished span before any exporter sees it (privacy, sampling).

`prepare` runs once per span, on the thread that ended it, for every exporter of the setup.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan

from sdk_telemetry._settings import Settings


def prepare(span: ReadableSpan, settings: Settings) -> ReadableSpan | None:
    """The span to export (possibly a scrubbed copy), or None to drop it."""
    return span
