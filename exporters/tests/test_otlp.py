"""`otlp.OTLPSpanExporter`: upstream's OTLP/HTTP span exporter with the direct encoder.

Its `export()` is a copy of upstream's (with the encoder swapped) that reads upstream's private
fields, so these tests guard the copy: they fail when the installed
`opentelemetry-exporter-otlp-proto-http` changes the method that was copied or the fields it
reads, and say what to re-check. The exporter is then run against a real OTLP/HTTP endpoint.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from importlib.metadata import version

import pytest
from helpers.loopback import LoopbackServer
from helpers.spans import varied_spans
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as upstream_encode
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as UpstreamOTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult
from sdk_telemetry_exporters.otlp import OTLPSpanExporter, encode_spans

UPSTREAM = "opentelemetry-exporter-otlp-proto-http"
#: The upstream versions whose `OTLPSpanExporter.export` the copy in `otlp.py` was checked against.
CHECKED_VERSIONS = ">=1.45.0, <=1.45.2"
#: sha256 of `normalised(inspect.getsource(upstream OTLPSpanExporter.export))` in those versions.
UPSTREAM_EXPORT_SHA256 = "1881cbab6d323d69d7927247a83f0429a6e92a774f8eaa99b4e8057c874a51b3"
#: Upstream's private fields the copy reads (set by upstream's `__init__`), and what it calls on them.
PRIVATE_FIELDS = {"_shutdown": None, "_metrics": "export_operation", "_max_request_size": None, "_client": "export"}
RECHECK = (
    f"{UPSTREAM} {{installed}} is not what `sdk_telemetry_exporters/otlp.py` copied "
    f"(checked against {CHECKED_VERSIONS}). Re-check `OTLPSpanExporter.export` in otlp.py against upstream's "
    "`opentelemetry/exporter/otlp/proto/http/trace_exporter/__init__.py`: the steps it copies (shutdown check, "
    "the export_operation metrics context, encode errors, max_request_size, the client's export and its result) "
    "and the private fields it reads ({fields}); port what changed, then record the new versions and hash here."
)


def normalised(source: str) -> str:
    """Source without blank lines, comment-only lines or trailing spaces (a comment change is no change)."""
    lines = textwrap.dedent(source).splitlines()
    return "\n".join(line.rstrip() for line in lines if line.strip() and not line.strip().startswith("#"))


def recheck(problem: str) -> str:
    return f"{problem}\n" + RECHECK.format(installed=version(UPSTREAM), fields=", ".join(PRIVATE_FIELDS))


def test_upstreams_export_is_the_one_that_was_copied() -> None:
    source = normalised(inspect.getsource(UpstreamOTLPSpanExporter.export))
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == UPSTREAM_EXPORT_SHA256, recheck(
        f"upstream's OTLPSpanExporter.export changed (sha256 {digest}, recorded {UPSTREAM_EXPORT_SHA256}); "
        f"it now reads:\n{source}"
    )


def test_the_private_fields_the_copy_reads_are_still_there(server: LoopbackServer) -> None:
    for exporter in (UpstreamOTLPSpanExporter(endpoint=server.url), OTLPSpanExporter(endpoint=server.url)):
        for field, method in PRIVATE_FIELDS.items():
            assert hasattr(exporter, field), recheck(f"{type(exporter).__name__} has no `{field}` any more")
            if method is not None:
                assert callable(getattr(getattr(exporter, field), method, None)), recheck(
                    f"`{field}.{method}` is not callable any more"
                )
        exporter.shutdown()


def test_an_unencodable_value_is_left_out_like_upstream() -> None:
    spans = varied_spans({"big": 1 << 70, "ok": 1}, {}, False, 0)
    assert encode_spans(spans) == upstream_encode(spans).SerializePartialToString()


def test_the_exporter_posts_protobuf_a_real_parser_reads(server: LoopbackServer) -> None:
    spans = varied_spans({"a": "b"}, {"e": 1}, True, 2)
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    [received] = server.received
    assert received.path == "/v1/traces"
    assert received.headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(received.body)
    names = [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert sorted(names) == sorted(span.name for span in spans)
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE


@pytest.mark.parametrize("size", [1, 64])
def test_a_batch_over_max_request_size_is_not_sent(server: LoopbackServer, size: int) -> None:
    spans = varied_spans({"a": "b" * 200}, {}, False, 0)
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces", max_request_size=size)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert server.received == []
