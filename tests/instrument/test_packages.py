"""`instrument(package)` on the real `openai` and `anthropic` packages, against a loopback fake of
their APIs: the public client surface is found (resources in public submodules, the client
re-exported from a private module), data models, exceptions, private helpers, framework methods
and third-party code are left alone, discovery imports nothing and warns about nothing (submodules
the host imports later are instrumented at their import), and `uninstrument` restores it all."""

from __future__ import annotations

import json
import re
import sys
import types

import anthropic
import openai
import pytest

from sdk_telemetry import instrument, is_instrumented, uninstrument
from sdk_telemetry.instrument.surface import Package, is_data_class, surface_of
from tests.helpers.llm_api import MODEL
from tests.helpers.processes import ROOT, run_python
from tests.instrument.conftest import ours

#: Span names that must never come from instrumenting a package: framework and model methods.
EXCLUDED = re.compile(r"(^|\.)(construct|model_\w+|__init__|with_raw_response|with_streaming_response)$")
FOREIGN = ("httpx", "httpx2", "pydantic", "anyio", "typing")


def namespaces(package: str) -> dict[str, dict[str, object]]:
    """A copy of the namespace of every loaded module of `package` and of every class defined in one."""
    found: dict[str, dict[str, object]] = {}
    for name, module in list(sys.modules.items()):
        if not (name == package or name.startswith(package + ".")) or not isinstance(module, types.ModuleType):
            continue
        found[name] = dict(vars(module))
        for value in list(vars(module).values()):
            if isinstance(value, type) and str(vars(value).get("__module__", "")).startswith(package):
                found[f"{value.__qualname__}:{id(value)}"] = dict(vars(value))
    return found


def instrumented_count(package: str) -> int:
    """How many distinct wrappers the package's modules and classes hold."""
    return len(
        {id(value) for space in namespaces(package).values() for value in space.values() if is_instrumented(value)}
    )


def assert_restored(before: dict[str, dict[str, object]], after: dict[str, dict[str, object]]) -> None:
    """Every public attribute as it was, and none added by us (the SDK's own work changes some
    private ones: pydantic completes a model at its first use, `copy` caches `__slotnames__`, an
    import adds a submodule to its package)."""
    for key, namespace in before.items():
        public = {name: value for name, value in namespace.items() if not name.startswith("_")}
        changed = [name for name, value in public.items() if after[key].get(name, None) is not value]
        assert changed == [], (key, changed)
        added = [name for name in after[key].keys() - namespace.keys() if is_instrumented(after[key][name])]
        assert added == [], (key, added)


def test_instrument_openai_records_the_resource_call_and_no_framework_method(recorded, llm_api):
    import openai.resources.chat.completions.completions  # loaded before: patched at once

    before = namespaces("openai")
    instrument(openai)
    assert is_instrumented(vars(openai.resources.chat.completions.completions.Completions)["create"])
    assert not is_instrumented(vars(openai.BaseModel).get("construct"))
    client = openai.OpenAI(api_key="sk-test", base_url=llm_api.openai_url, max_retries=0)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello world"
    names = ours(recorded)
    assert "Completions.create" in names  # (the client's own `OpenAI.post` inside it: kept or collapsed)
    assert [name for name in names if EXCLUDED.search(name)] == []
    qualified = [span.attributes["code.function.name"] for span in recorded.get_finished_spans() if span.name in names]
    assert [name for name in qualified if str(name).startswith(FOREIGN)] == []

    uninstrument(openai)
    assert_restored(before, namespaces("openai"))
    recorded.clear()
    # A new client: an openai resource keeps the client's bound methods it took while instrumented.
    client = openai.OpenAI(api_key="sk-test", base_url=llm_api.openai_url, max_retries=0)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert ours(recorded) == []


def test_instrument_anthropic_records_messages_create(recorded, llm_api):
    before = namespaces("anthropic")
    instrument(anthropic)
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=llm_api.url, max_retries=0)
    message = client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello world"
    names = ours(recorded)
    assert "Messages.create" in names
    assert [name for name in names if EXCLUDED.search(name)] == []
    ours_qualified = [
        str(span.attributes.get("code.function.name")) for span in recorded.get_finished_spans() if span.name in names
    ]
    assert [name for name in ours_qualified if name.startswith(FOREIGN)] == []
    uninstrument(anthropic)
    assert_restored(before, namespaces("anthropic"))


def test_the_surface_leaves_out_models_exceptions_private_helpers_and_foreign_code():
    package = Package(openai)
    found = dict(surface_of(openai, package))
    assert found["OpenAI"] is openai.OpenAI  # defined in openai._client, re-exported in __all__
    assert found["AsyncOpenAI"] is openai.AsyncOpenAI
    for left_out in ("BaseModel", "APIError", "RateLimitError", "RequestOptions", "Timeout", "resources", "chat"):
        assert left_out not in found, left_out
    assert is_data_class(openai.BaseModel) and is_data_class(openai.RateLimitError)
    assert not is_data_class(openai.OpenAI)
    import openai.resources.chat.completions.completions as completions_module

    names = dict(surface_of(completions_module, package))
    assert {"Completions", "AsyncCompletions"} <= names.keys()
    assert "SyncAPIResource" not in names  # imported there from the private openai._resource
    assert "maybe_transform" not in names  # a private helper imported there


def test_a_package_instrumented_before_its_submodules_load_imports_nothing_and_catches_them_later():
    """In a fresh interpreter (nothing of `openai.resources` loaded yet), under `-W error`."""
    result = run_python(
        """
        import json, re, sys, time, warnings
        warnings.simplefilter("error")
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from sdk_telemetry import configure_telemetry, instrument, uninstrument
        from tests.helpers.llm_api import FakeLLMAPI, MODEL
        from tests.instrument.conftest import ours
        from tests.instrument.test_packages import instrumented_count, namespaces

        configure_telemetry(exporter="none")
        exporter = InMemorySpanExporter()
        trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
        import openai

        modules = set(sys.modules)
        started = time.perf_counter()
        instrument(openai)
        seconds = time.perf_counter() - started
        imported = sorted(set(sys.modules) - modules)
        wrapped_at_once = instrumented_count("openai")
        with FakeLLMAPI() as api:
            client = openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        wrapped_after = instrumented_count("openai")
        names = ours(exporter)
        uninstrument(openai)
        print(json.dumps({
            "seconds": seconds, "imported": imported, "names": names,
            "wrapped_at_once": wrapped_at_once, "wrapped_after": wrapped_after,
            "left_after_uninstrument": instrumented_count("openai"),
            "resources_loaded_before": "openai.resources" in modules,
        }))
        """,
        cwd=ROOT,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "sdk-telemetry" not in result.stderr, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["resources_loaded_before"] is False
    assert report["imported"] == []
    assert report["seconds"] < 2.0, report
    assert "Completions.create" in report["names"]
    assert [name for name in report["names"] if EXCLUDED.search(name)] == []
    assert report["wrapped_after"] > report["wrapped_at_once"] > 0  # resources wrapped at their import
    assert report["left_after_uninstrument"] == 0
    print(
        f"instrument(openai): {report['seconds'] * 1000:.0f} ms, {report['wrapped_at_once']} callables wrapped at once,"
        f" {report['wrapped_after']} after the first chat call"
    )


@pytest.mark.parametrize("package", [openai, anthropic], ids=["openai", "anthropic"])
def test_instrumenting_a_package_twice_does_not_double_spans(recorded, llm_api, package):
    instrument(package)
    count = instrumented_count(package.__name__)
    instrument(package)
    assert instrumented_count(package.__name__) == count


async def test_instrument_openai_records_the_async_resource_call(recorded, llm_api):
    instrument(openai)
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=llm_api.openai_url, max_retries=0)
    reply = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello world"
    assert "AsyncCompletions.create" in ours(recorded)
    assert [request.path for request in llm_api.requests] == ["/v1/chat/completions"]
    await client.close()
