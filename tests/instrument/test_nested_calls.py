"""Nested instrumented calls of one SDK: one span per user call by default (the inner calls run in the
outer call's context), child spans with `nested_calls="children"`; on the real `openai` package
against a loopback fake of its API, and on modules of two made-up SDKs."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.config import resolve_settings
from tests.helpers.llm_api import MODEL, FakeLLMAPI

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as fake:
        yield fake


def capture(**settings: str) -> InMemorySpanExporter:
    configure_telemetry(exporter="none", http_spans=False, **settings)  # type: ignore[arg-type]
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    return exporter


def instrument_openai() -> None:
    instrument(openai.resources.chat.completions.Completions)
    instrument(openai._base_client.SyncAPIClient)  # its post/request run inside Completions.create


def openai_client(api: FakeLLMAPI) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)


def names(exporter: InMemorySpanExporter) -> list[str]:
    return [span.name for span in exporter.get_finished_spans()]


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_an_openai_call_gives_one_span_by_default(api):
    spans = capture()
    instrument_openai()
    client = openai_client(api)
    for _ in range(3):
        assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
    assert names(spans) == ["Completions.create"] * 3
    client.models.list()  # a call of the instrumented client alone still has its span
    assert names(spans)[-1] == "SyncAPIClient.get_api_list"


def test_nested_openai_calls_are_children_when_asked(api):
    spans = capture(nested_calls="children")
    instrument_openai()
    openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES)
    found = by_name(spans)
    assert {"Completions.create", "SyncAPIClient.post", "SyncAPIClient.request"} <= set(found)
    create, post, request = found["Completions.create"], found["SyncAPIClient.post"], found["SyncAPIClient.request"]
    assert create.parent is None
    assert post.parent is not None and post.parent.span_id == create.context.span_id
    assert request.parent is not None and request.parent.span_id == post.context.span_id
    assert {span.context.trace_id for span in found.values()} == {create.context.trace_id}


def test_children_from_the_environment(api, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_NESTED_CALLS", "children")
    spans = capture()
    instrument_openai()
    openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert {"Completions.create", "SyncAPIClient.post", "SyncAPIClient.request"} <= set(names(spans))


def test_a_failed_openai_call_records_its_error_once_on_the_one_span(api):
    spans = capture()
    instrument_openai()
    api.fail(429)
    with pytest.raises(openai.RateLimitError):
        openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES)
    [span] = spans.get_finished_spans()
    assert span.name == "Completions.create" and span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and attr.ERROR_PROPAGATED not in span.attributes
    assert [event.name for event in span.events] == ["exception"]


def test_an_invalid_setting_is_refused_in_code_and_warned_about_once_in_the_environment(caplog):
    with pytest.raises(ValueError, match="nested_calls must be one of collapse, children"):
        resolve_settings(nested_calls="flat")  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        assert resolve_settings({"SDK_TELEMETRY_NESTED_CALLS": "sideways"}).nested_calls == "collapse"
    warnings = [record.getMessage() for record in caplog.records if "SDK_TELEMETRY_NESTED_CALLS" in record.getMessage()]
    assert warnings == [
        "sdk-telemetry: SDK_TELEMETRY_NESTED_CALLS='sideways' is not one of collapse, children; using 'collapse'"
    ]
    assert resolve_settings({"SDK_TELEMETRY_NESTED_CALLS": " Children "}).nested_calls == "children"


# --- two SDKs: the collapsing follows the top-level package -----------------------------------------

SDK_SOURCE = """
from opentelemetry import trace

def call(inner=None):
    seen = trace.get_current_span().get_span_context().span_id
    return [seen] + (inner() if inner else [])
"""


@pytest.fixture
def sdks() -> Iterator[tuple[types.ModuleType, types.ModuleType, types.ModuleType]]:
    """`alpha.client`, `alpha.http` and `beta.client`: modules of two SDKs, each with one function `call`."""
    made = []
    for name in ("alpha.client", "alpha.http", "beta.client"):
        module = types.ModuleType(name)
        exec(compile(SDK_SOURCE, name, "exec"), module.__dict__)
        sys.modules[name] = module
        made.append(module)
    yield made[0], made[1], made[2]
    for module in made:
        sys.modules.pop(module.__name__, None)


def test_a_call_of_another_sdk_inside_one_is_its_child_and_nested_calls_collapse_per_sdk(sdks):
    alpha_client, alpha_http, beta_client = sdks
    spans = capture()
    alpha = instrument(alpha_client.call, name="alpha.call")
    alpha_http_call = instrument(alpha_http.call, name="alpha.http")
    beta = instrument(beta_client.call, name="beta.call")

    # alpha.call -> alpha.http (collapsed) -> beta.call (another SDK: a child) -> alpha.http (alpha's
    # client used by beta: a child of beta's call).
    seen = alpha(lambda: alpha_http_call(lambda: beta(lambda: alpha_http_call())))
    found = by_name(spans)
    assert sorted(names(spans)) == ["alpha.call", "alpha.http", "beta.call"]
    outer, beta_span, used_by_beta = found["alpha.call"], found["beta.call"], found["alpha.http"]
    assert beta_span.parent is not None and beta_span.parent.span_id == outer.context.span_id
    assert used_by_beta.parent is not None and used_by_beta.parent.span_id == beta_span.context.span_id
    # The collapsed call ran in the outer call's context.
    assert seen == [span.context.span_id for span in (outer, outer, beta_span, used_by_beta)]
