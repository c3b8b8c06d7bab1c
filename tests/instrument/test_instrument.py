"""`instrument()` / `uninstrument()`: targets, span names, errors, metrics, idempotency, argument capture,
safety and the disabled switch, all against the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sys
import textwrap
import time
import types
from collections.abc import Callable, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters import attributes as attr

import sdk_telemetry
from sdk_telemetry import configure_telemetry, instrument, is_instrumented, uninstrument
from sdk_telemetry.instrument import calls as _calls

THIS_MODULE = __name__.rsplit(".", 1)[-1]  # "test_instrument"

# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """Telemetry configured with no exporter and an in-memory metric reader."""
    metric_reader = InMemoryMetricReader()
    configure_telemetry(exporter="none", metric_readers=[metric_reader])
    return metric_reader


@pytest.fixture
def spans(reader: InMemoryMetricReader) -> InMemorySpanExporter:
    """Every finished span, captured synchronously from the global SDK TracerProvider."""
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    return exporter


_module_numbers = itertools.count()


@pytest.fixture
def make_module() -> Iterator[Callable[[str], types.ModuleType]]:
    """Build a throwaway module `fakepkg_N.fakemod` from source and register it in sys.modules."""
    registered: list[str] = []

    def make(source: str) -> types.ModuleType:
        name = f"fakepkg_{next(_module_numbers)}.fakemod"
        module = types.ModuleType(name)
        sys.modules[name] = module
        registered.append(name)
        exec(textwrap.dedent(source), module.__dict__)
        return module

    yield make
    for name in registered:
        sys.modules.pop(name, None)


def names(exporter: InMemorySpanExporter) -> list[str]:
    return [span.name for span in exporter.get_finished_spans()]


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    matching = [span for span in exporter.get_finished_spans() if span.name == name]
    assert len(matching) == 1, f"expected one span {name!r}, got {names(exporter)}"
    return matching[0]


def props(span: ReadableSpan) -> dict[str, object]:
    raw = span.attributes[attr.PROPS]
    assert isinstance(raw, str)
    return json.loads(raw)


def points(reader: InMemoryMetricReader, metric: str) -> list[tuple[dict[str, object], object]]:
    """(attributes, data point) of every point of `metric`."""
    data = reader.get_metrics_data()
    found = []
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for item in scope_metrics.metrics:
                if item.name == metric:
                    found.extend((dict(point.attributes), point) for point in item.data.data_points)
    return found


def point(reader: InMemoryMetricReader, metric: str, **attributes: str) -> object:
    wanted = {key.replace("_", "."): value for key, value in attributes.items()}
    matching = [p for attrs, p in points(reader, metric) if attrs == wanted]
    assert len(matching) == 1, f"no single {metric} point with {wanted}: {points(reader, metric)}"
    return matching[0]


# --- the code under instrumentation ---------------------------------------------------------------


class QuotaError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Client:
    def get(self, key):
        return f"value:{key}"

    def get_many(self, keys):
        return [self.get(key) for key in keys]

    def put(self, key, value):
        return True

    def delete(self, key):
        return None

    def fail(self, exc):
        raise exc

    def _private(self):
        return "private"

    def __len__(self):
        return 0

    @property
    def label(self):
        return "client"

    @staticmethod
    def version():
        return "1.0"

    @classmethod
    def create(cls):
        return cls()


class Base:
    def shared(self):
        return "base"

    def overridden(self):
        return "base"


class Derived(Base):
    def overridden(self):
        return "derived"

    def own(self):
        return "own"


class Layers:
    """Three instrumented layers that the same exception passes through."""

    def outer(self, exc):
        return self.middle(exc)

    def middle(self, exc):
        return self.inner(exc)

    def inner(self, exc):
        raise exc

    def translate(self):
        try:
            self.inner(ValueError("low level"))
        except ValueError as exc:
            raise RuntimeError("high level") from exc

    def consume(self, exc):
        return list(self.produce(exc))

    def produce(self, exc):
        yield 1
        raise exc


class Account:
    def login(self, user, password):
        return user

    def configure(self, **settings):
        return len(settings)

    @classmethod
    def connect(cls, host, token):
        return host

    @staticmethod
    def ping(host, api_key):
        return host


def module_level_function(x):
    return x * 2


MODULE_SOURCE = """
import os.path
from os.path import join

from sdk_telemetry import instrument


def hello(name):
    return f"hello {name}"


def goodbye(name):
    return f"bye {name}"


def _helper():
    return "helper"


async def fetch(x):
    return x


class Widget:
    def spin(self):
        return "spinning"

    def _internal(self):
        return "internal"
"""


# --- targets and span names -----------------------------------------------------------------------


def test_class_target_records_each_public_method_call_as_class_dot_method(spans):
    assert instrument(Client) is Client
    client = Client()
    assert client.get("a") == "value:a"
    assert client.put("a", 1) is True
    assert client.version() == "1.0"
    assert isinstance(Client.create(), Client)
    assert names(spans) == ["Client.get", "Client.put", "Client.version", "Client.create"]
    span = only(spans, "Client.get")
    assert span.kind == trace.SpanKind.INTERNAL
    assert span.status.status_code == StatusCode.UNSET
    assert span.instrumentation_scope.name == attr.INVOCATION_SCOPE


def test_class_target_skips_private_dunder_and_properties(spans):
    instrument(Client)
    client = Client()
    assert client._private() == "private"
    assert len(client) == 0
    assert client.label == "client"
    assert not is_instrumented(Client.__dict__["_private"])
    assert not is_instrumented(Client.__dict__["__len__"])
    assert isinstance(Client.__dict__["label"], property)
    assert names(spans) == []


def test_class_target_includes_inherited_public_methods(spans):
    instrument(Derived)
    derived = Derived()
    assert derived.shared() == "base"
    assert derived.overridden() == "derived"
    assert derived.own() == "own"
    assert names(spans) == ["Derived.shared", "Derived.overridden", "Derived.own"]
    assert is_instrumented(Derived.__dict__["shared"])
    # the base class itself is untouched
    assert Base().shared() == "base"
    assert not is_instrumented(Base.__dict__["shared"])
    assert len(spans.get_finished_spans()) == 3


def test_class_target_does_not_wrap_methods_inherited_from_builtins(spans):
    class Registry(dict):
        def register(self, key):
            self[key] = True
            return key

    instrument(Registry)
    registry = Registry()
    assert registry.register("a") == "a"
    assert list(registry.keys()) == ["a"]
    assert registry.get("a") is True
    assert names(spans) == ["Registry.register"]


def test_instance_target_traces_only_that_instance(spans):
    traced, untraced = Client(), Client()
    assert instrument(traced) is traced
    assert traced.get("x") == "value:x"
    assert untraced.get("y") == "value:y"
    assert traced.version() == "1.0"
    assert names(spans) == ["Client.get", "Client.version"]
    assert not is_instrumented(Client.__dict__["get"])


def test_module_target_records_public_functions_and_classes_defined_in_it(spans, make_module):
    module = make_module(MODULE_SOURCE)
    assert instrument(module) is module
    assert module.hello("ann") == "hello ann"
    assert module.Widget().spin() == "spinning"
    assert module._helper() == "helper"
    assert module.Widget()._internal() == "internal"
    assert module.join("a", "b") == "a/b"
    # the module's last dotted component names its functions; classes keep Class.method
    assert names(spans) == ["fakemod.hello", "Widget.spin"]
    assert is_instrumented(module.goodbye)
    assert not is_instrumented(module.join)  # imported, not defined there
    assert not is_instrumented(module.os.path.join)
    assert not is_instrumented(module._helper)


def test_module_classes_are_named_class_dot_method(spans, make_module):
    module = make_module(MODULE_SOURCE)
    instrument(module)
    module.Widget().spin()
    assert names(spans) == ["Widget.spin"]


def test_function_target_returns_a_wrapper_named_module_dot_function(spans):
    wrapper = instrument(module_level_function)
    assert is_instrumented(wrapper)
    assert wrapper(21) == 42
    assert names(spans) == [f"{THIS_MODULE}.module_level_function"]
    assert wrapper.__name__ == "module_level_function"
    assert not is_instrumented(wrapper.__wrapped__)


def test_function_target_in_a_module_also_patches_the_module_attribute(spans, make_module):
    module = make_module(MODULE_SOURCE)
    original = module.hello
    wrapper = instrument(module.hello)
    assert module.hello is wrapper
    assert module.hello("bo") == "hello bo"
    assert names(spans) == ["fakemod.hello"]
    assert uninstrument(wrapper) is original
    assert module.hello is original


def test_string_path_to_a_class(spans, make_module):
    module = make_module(MODULE_SOURCE)
    assert instrument(f"{module.__name__}:Widget") is module.Widget
    module.Widget().spin()
    assert names(spans) == ["Widget.spin"]


def test_string_path_to_a_single_method(spans):
    original = Client.__dict__["get"]
    instrument(f"{__name__}:Client.get")
    client = Client()
    client.get("a")
    client.put("a", 1)
    assert names(spans) == ["Client.get"]
    assert not is_instrumented(Client.__dict__["put"])
    uninstrument(f"{__name__}:Client.get")
    assert Client.__dict__["get"] is original


def test_string_path_to_a_function_patches_the_module(spans, make_module):
    module = make_module(MODULE_SOURCE)
    instrument(f"{module.__name__}:goodbye")
    assert is_instrumented(module.goodbye)
    assert module.goodbye("cy") == "bye cy"
    module.hello("not traced")
    assert names(spans) == ["fakemod.goodbye"]


def test_string_path_to_a_module(spans, make_module):
    module = make_module(MODULE_SOURCE)
    instrument(module.__name__)
    module.goodbye("x")
    assert names(spans) == ["fakemod.goodbye"]


def test_bare_decorator_on_a_module_function(spans, make_module):
    module = make_module(
        """
        from sdk_telemetry import instrument

        @instrument
        def decorated(x):
            return x + 1
        """
    )
    assert is_instrumented(module.decorated)
    assert module.decorated(1) == 2
    assert names(spans) == ["fakemod.decorated"]


def test_decorator_with_name_sets_the_whole_span_name(spans):
    @instrument(name="payments.charge")
    def charge(amount):
        return amount * 100

    assert charge(2) == 200
    assert names(spans) == ["payments.charge"]


def test_bare_decorator_on_a_method_in_the_class_body(spans):
    class Shop:
        @instrument
        def buy(self, item):
            return f"bought {item}"

        def browse(self):
            return "browsing"

    assert Shop().buy("tea") == "bought tea"
    assert Shop().browse() == "browsing"
    assert names(spans) == ["Shop.buy"]


def test_decorator_on_a_class_returns_the_class_instrumented(spans):
    @instrument
    class Cart:
        def add(self, item):
            return [item]

    assert isinstance(Cart, type)
    assert Cart().add(1) == [1]
    assert names(spans) == ["Cart.add"]


def test_decorator_with_options_on_a_class(spans):
    @instrument(include="add", prefix="store")
    class Basket:
        def add(self, item):
            return item

        def remove(self, item):
            return item

    Basket().add(1)
    Basket().remove(1)
    assert names(spans) == ["store.add"]


def test_nested_function_is_named_after_its_module(spans):
    def make():
        def inner():
            return "inner"

        return inner

    traced = instrument(make())
    assert traced() == "inner"
    assert names(spans) == [f"{THIS_MODULE}.inner"]


# --- include, exclude, prefix ---------------------------------------------------------------------


def test_include_takes_a_name(spans):
    instrument(Client, include="get")
    client = Client()
    client.get("a")
    client.get_many([])
    client.put("a", 1)
    assert names(spans) == ["Client.get"]


def test_include_takes_glob_patterns(nested_children, spans):
    instrument(Client, include=["get*", "del*"])
    client = Client()
    client.get_many(["a"])
    client.put("a", 1)
    client.delete("a")
    assert names(spans) == ["Client.get", "Client.get_many", "Client.delete"]


def test_exclude_takes_names_and_globs(spans):
    instrument(Client, exclude=["put", "get_*", "fail"])
    client = Client()
    client.get("a")
    client.get_many([])
    client.put("a", 1)
    client.delete("a")
    assert names(spans) == ["Client.get", "Client.delete"]
    assert not is_instrumented(Client.__dict__["put"])
    assert not is_instrumented(Client.__dict__["get_many"])


def test_include_cannot_reach_private_methods(spans):
    instrument(Client, include="*")
    assert Client()._private() == "private"
    assert names(spans) == []


def test_include_and_exclude_on_a_module(spans, make_module):
    module = make_module(MODULE_SOURCE)
    instrument(module, include=["h*", "Widget"], exclude="hel?o")
    module.hello("a")
    module.goodbye("b")
    module.Widget().spin()
    assert names(spans) == ["Widget.spin"]


def test_prefix_replaces_the_class_part(spans):
    instrument(Client, prefix="acme.client")
    Client().get("a")
    assert names(spans) == ["acme.client.get"]


def test_prefix_replaces_the_module_part(spans, make_module):
    module = make_module(MODULE_SOURCE)
    instrument(module, prefix="greeter")
    module.hello("a")
    assert names(spans) == ["greeter.hello"]


def test_prefix_on_an_instance_and_a_function(spans):
    instrument(Client(), prefix="inst").get("a")
    instrument(module_level_function, prefix="fn")(1)
    assert names(spans) == ["inst.get", "fn.module_level_function"]


# --- nesting --------------------------------------------------------------------------------------


def test_nested_calls_are_parent_and_child(nested_children, spans):
    instrument(Client)
    assert Client().get_many(["a", "b"]) == ["value:a", "value:b"]
    outer = only(spans, "Client.get_many")
    children = [span for span in spans.get_finished_spans() if span.name == "Client.get"]
    assert len(children) == 2
    for child in children:
        assert child.context.trace_id == outer.context.trace_id
        assert child.parent is not None
        assert child.parent.span_id == outer.context.span_id
    assert outer.parent is None


def test_instrumented_call_is_child_of_the_callers_span(spans):
    instrument(Client)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        Client().get("a")
    span = only(spans, "Client.get")
    assert span.parent is not None
    assert span.parent.span_id == request.get_span_context().span_id
    assert span.context.trace_id == request.get_span_context().trace_id


def test_separate_top_level_calls_are_separate_traces(spans):
    instrument(Client)
    Client().get("a")
    Client().get("b")
    first, second = spans.get_finished_spans()
    assert first.context.trace_id != second.context.trace_id


def test_code_function_name_attribute(spans):
    instrument(Client)
    Client().get("a")
    assert only(spans, "Client.get").attributes["code.function.name"] == f"{__name__}.Client.get"


# --- errors ---------------------------------------------------------------------------------------


def test_error_sets_status_event_and_type(spans):
    instrument(Client)
    error = ValueError("bad key")
    with pytest.raises(ValueError) as raised:
        Client().fail(error)
    assert raised.value is error
    span = only(spans, "Client.fail")
    assert span.status.status_code == StatusCode.ERROR
    assert "bad key" in (span.status.description or "")
    assert span.attributes[attr.ERROR_TYPE] == "ValueError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"].endswith("ValueError")
    assert event.attributes["exception.message"] == "bad key"
    stacktrace = event.attributes["exception.stacktrace"]
    assert "Traceback" in stacktrace
    assert "raise exc" in stacktrace
    assert attr.ERROR_PROPAGATED not in span.attributes


def test_error_type_of_a_custom_exception_is_module_qualified(spans):
    instrument(Client)
    with pytest.raises(QuotaError):
        Client().fail(QuotaError("over quota", 429))
    assert only(spans, "Client.fail").attributes[attr.ERROR_TYPE] == f"{__name__}.QuotaError"


def test_error_id_is_unique_per_exception_object(spans):
    instrument(Client)
    client = Client()
    for message in ("one", "two"):
        with pytest.raises(ValueError):
            client.fail(ValueError(message))
    first, second = spans.get_finished_spans()
    assert first.attributes[attr.ERROR_ID]
    assert second.attributes[attr.ERROR_ID]
    assert first.attributes[attr.ERROR_ID] != second.attributes[attr.ERROR_ID]


def test_error_passing_through_layers_is_recorded_once_with_one_id(nested_children, spans):
    instrument(Layers)
    error = KeyError("missing")
    with pytest.raises(KeyError) as raised:
        Layers().outer(error)
    assert raised.value is error
    inner, middle, outer = (only(spans, f"Layers.{name}") for name in ("inner", "middle", "outer"))
    ids = {span.attributes[attr.ERROR_ID] for span in (inner, middle, outer)}
    assert len(ids) == 1
    assert [e.name for e in inner.events] == ["exception"]
    assert attr.ERROR_PROPAGATED not in inner.attributes
    for span in (middle, outer):
        assert span.attributes[attr.ERROR_PROPAGATED] is True
        assert span.events == ()
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes[attr.ERROR_TYPE] == "KeyError"
    assert middle.parent.span_id == outer.context.span_id
    assert inner.parent.span_id == middle.context.span_id


def test_a_new_exception_raised_from_a_caught_one_gets_its_own_id(nested_children, spans):
    instrument(Layers)
    with pytest.raises(RuntimeError):
        Layers().translate()
    inner, outer = only(spans, "Layers.inner"), only(spans, "Layers.translate")
    assert inner.attributes[attr.ERROR_ID] != outer.attributes[attr.ERROR_ID]
    assert attr.ERROR_PROPAGATED not in outer.attributes
    assert [e.name for e in outer.events] == ["exception"]
    assert outer.attributes[attr.ERROR_TYPE] == "RuntimeError"


def test_error_through_a_generator_and_its_consumer(nested_children, spans):
    instrument(Layers)
    error = ValueError("mid-stream")
    with pytest.raises(ValueError) as raised:
        Layers().consume(error)
    assert raised.value is error
    produce, consume = only(spans, "Layers.produce"), only(spans, "Layers.consume")
    assert produce.attributes[attr.ERROR_ID] == consume.attributes[attr.ERROR_ID]
    assert [e.name for e in produce.events] == ["exception"]
    assert consume.attributes[attr.ERROR_PROPAGATED] is True
    assert consume.events == ()


async def test_error_through_async_layers(nested_children, spans):
    class Remote:
        async def call(self, exc):
            return await self.send(exc)

        async def send(self, exc):
            await asyncio.sleep(0)
            raise exc

    instrument(Remote)
    error = ConnectionError("reset")
    with pytest.raises(ConnectionError) as raised:
        await Remote().call(error)
    assert raised.value is error
    send, call = only(spans, "Remote.send"), only(spans, "Remote.call")
    assert send.attributes[attr.ERROR_ID] == call.attributes[attr.ERROR_ID]
    assert [e.name for e in send.events] == ["exception"]
    assert call.attributes[attr.ERROR_PROPAGATED] is True
    assert call.events == ()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (QuotaError("over quota", 429), "429"),
        (FileNotFoundError(2, "No such file"), "2"),
    ],
    ids=["code", "errno"],  # a `status_code` is the HTTP status (tests/instrument/test_http_status.py)
)
def test_error_code_attribute(spans, error, code):
    instrument(Client)
    with pytest.raises(type(error)):
        Client().fail(error)
    assert str(only(spans, "Client.fail").attributes[attr.ERROR_CODE]) == code


def test_error_code_from_error_code_attribute(spans):
    error = RuntimeError("failed")
    error.error_code = "E_RATE"  # type: ignore[attr-defined]
    instrument(Client)
    with pytest.raises(RuntimeError):
        Client().fail(error)
    assert only(spans, "Client.fail").attributes[attr.ERROR_CODE] == "E_RATE"


def test_no_error_code_without_a_code(spans):
    instrument(Client)
    with pytest.raises(ValueError):
        Client().fail(ValueError("plain"))
    assert attr.ERROR_CODE not in only(spans, "Client.fail").attributes


def test_secrets_in_error_messages_are_redacted(spans):
    instrument(Client)
    with pytest.raises(ValueError):
        Client().fail(ValueError("GET https://api.example.com/v1?api_key=sk-live-123 failed"))
    span = only(spans, "Client.fail")
    assert "sk-live-123" not in (span.status.description or "")
    assert "sk-live-123" not in span.events[0].attributes["exception.message"]


def test_recording_a_long_error_message_does_not_slow_the_call(spans):
    instrument(Client)
    error = ValueError("upload rejected: " + "a" * 6000)
    started = time.perf_counter()
    with pytest.raises(ValueError) as raised:
        Client().fail(error)
    elapsed = time.perf_counter() - started
    assert raised.value is error
    assert only(spans, "Client.fail").status.status_code == StatusCode.ERROR
    assert elapsed < 2.0, f"recording a {len(str(error))}-character error message took {elapsed:.2f}s"


# --- metrics --------------------------------------------------------------------------------------


def test_successful_calls_count_and_time(reader, spans):
    instrument(Client)
    client = Client()
    client.get("a")
    client.get("b")
    calls = point(reader, "sdk_telemetry.invocations", function_name="Client.get", outcome="success")
    assert calls.value == 2
    duration = point(reader, "sdk_telemetry.invocation.duration", function_name="Client.get", outcome="success")
    assert duration.count == 2
    assert 0 <= duration.sum < 5
    assert points(reader, "sdk_telemetry.errors") == []


def test_duration_is_in_seconds(reader, spans):
    class Slow:
        def nap(self):
            time.sleep(0.02)

    instrument(Slow)
    Slow().nap()
    duration = point(reader, "sdk_telemetry.invocation.duration", function_name="Slow.nap", outcome="success")
    assert 0.015 <= duration.sum < 2


def test_failed_calls_count_as_errors(reader, spans):
    instrument(Client)
    client = Client()
    client.get("a")
    for _ in range(2):
        with pytest.raises(QuotaError):
            client.fail(QuotaError("over", 429))
    assert point(reader, "sdk_telemetry.invocations", function_name="Client.fail", outcome="error").value == 2
    assert point(reader, "sdk_telemetry.invocation.duration", function_name="Client.fail", outcome="error").count == 2
    errors = point(reader, "sdk_telemetry.errors", function_name="Client.fail", error_type=f"{__name__}.QuotaError")
    assert errors.value == 2
    assert [attrs for attrs, _ in points(reader, "sdk_telemetry.errors")] == [
        {"function.name": "Client.fail", "error.type": f"{__name__}.QuotaError"}
    ]


async def test_cancelled_calls_have_outcome_cancelled(reader, spans):
    class Waiter:
        async def wait(self, started):
            started.set()
            await asyncio.sleep(30)

    instrument(Waiter)
    started = asyncio.Event()
    task = asyncio.create_task(Waiter().wait(started))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    calls = point(reader, "sdk_telemetry.invocations", function_name="Waiter.wait", outcome="cancelled")
    assert calls.value == 1
    assert (
        point(reader, "sdk_telemetry.invocation.duration", function_name="Waiter.wait", outcome="cancelled").count == 1
    )
    assert points(reader, "sdk_telemetry.errors") == []
    span = only(spans, "Waiter.wait")
    assert span.end_time is not None
    assert span.status.status_code != StatusCode.ERROR


def test_keyboard_interrupt_is_cancelled_not_error(reader, spans):
    class Interrupted:
        def run(self):
            raise KeyboardInterrupt

    instrument(Interrupted)
    with pytest.raises(KeyboardInterrupt):
        Interrupted().run()
    assert point(reader, "sdk_telemetry.invocations", function_name="Interrupted.run", outcome="cancelled").value == 1
    assert points(reader, "sdk_telemetry.errors") == []


def test_metrics_use_the_span_name_as_function_name(reader, spans):
    instrument(Client, prefix="acme")
    Client().get("a")
    attributes = [attrs for attrs, _ in points(reader, "sdk_telemetry.invocations")]
    assert attributes == [{"function.name": "acme.get", "outcome": "success"}]


# --- idempotency ----------------------------------------------------------------------------------


def test_instrumenting_a_class_twice_does_not_double_spans(spans):
    original = Client.__dict__["get"]
    instrument(Client)
    instrument(Client)
    instrument(f"{__name__}:Client")
    Client().get("a")
    assert names(spans) == ["Client.get"]
    assert Client.__dict__["get"].__wrapped__ is original


def test_instrumenting_an_instance_twice_does_not_double_spans(spans):
    client = Client()
    instrument(client)
    instrument(client)
    client.get("a")
    assert names(spans) == ["Client.get"]


def test_instrumenting_a_function_twice_does_not_double_spans(spans):
    once = instrument(module_level_function)
    twice = instrument(once)
    assert twice is once
    assert twice(1) == 2
    assert names(spans) == [f"{THIS_MODULE}.module_level_function"]


def test_instrumenting_a_module_twice_does_not_double_spans(spans, make_module):
    module = make_module(MODULE_SOURCE)
    instrument(module)
    instrument(module)
    module.hello("a")
    module.Widget().spin()
    assert names(spans) == ["fakemod.hello", "Widget.spin"]


def test_instrumenting_a_function_then_its_module_does_not_double_spans(spans, make_module):
    module = make_module(MODULE_SOURCE)
    instrument(module.hello)
    instrument(module)
    module.hello("a")
    assert names(spans) == ["fakemod.hello"]


def test_decorated_module_function_then_its_module_does_not_double_spans(spans, make_module):
    module = make_module(
        """
        from sdk_telemetry import instrument

        @instrument
        def decorated(x):
            return x
        """
    )
    instrument(module)
    module.decorated(1)
    assert names(spans) == ["fakemod.decorated"]


def test_base_then_subclass_does_not_double_spans(spans):
    instrument(Base)
    instrument(Derived)
    Derived().shared()
    Base().shared()
    Derived().overridden()
    assert names(spans) == ["Derived.shared", "Base.shared", "Derived.overridden"]


def test_subclass_then_base_does_not_double_spans(spans):
    instrument(Derived)
    instrument(Base)
    Derived().shared()
    Base().shared()
    Derived().own()
    assert names(spans) == ["Derived.shared", "Base.shared", "Derived.own"]


def test_instance_of_an_instrumented_class_does_not_double_spans(spans):
    instrument(Client)
    client = Client()
    instrument(client)
    client.get("a")
    assert names(spans) == ["Client.get"]
    assert not any(is_instrumented(value) for value in vars(client).values())


def test_instrumented_instance_then_its_class_does_not_double_spans(spans):
    client = Client()
    instrument(client)
    instrument(Client)
    client.get("a")
    Client().get("b")
    assert names(spans) == ["Client.get", "Client.get"]


def test_decorated_method_then_class_does_not_double_spans(spans):
    class Shop:
        @instrument
        def buy(self):
            return "ok"

        def sell(self):
            return "ok"

    wrapper = Shop.__dict__["buy"]
    instrument(Shop)
    assert Shop.__dict__["buy"] is wrapper
    Shop().buy()
    Shop().sell()
    assert names(spans) == ["Shop.buy", "Shop.sell"]


# --- uninstrument ---------------------------------------------------------------------------------


def test_uninstrument_class_restores_the_original_attributes(spans):
    before = dict(vars(Client))
    instrument(Client)
    assert is_instrumented(Client.__dict__["get"])
    assert uninstrument(Client) is Client
    after = dict(vars(Client))
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] is value, key
    Client().get("a")
    Client.version()
    Client.create()
    assert names(spans) == []


def test_uninstrument_subclass_removes_inherited_attributes_again(spans):
    base_before, derived_before = dict(vars(Base)), dict(vars(Derived))
    instrument(Base)
    instrument(Derived)
    assert "shared" in vars(Derived)
    uninstrument(Derived)
    assert "shared" not in vars(Derived)
    assert vars(Derived)["overridden"] is derived_before["overridden"]
    assert vars(Derived)["own"] is derived_before["own"]
    Derived().shared()
    assert names(spans) == ["Base.shared"]  # still through the instrumented base
    uninstrument(Base)
    assert vars(Base)["shared"] is base_before["shared"]
    assert vars(Base)["overridden"] is base_before["overridden"]


def test_uninstrument_instance_removes_its_own_attributes(spans):
    client = Client()
    instrument(client)
    assert "get" in vars(client)
    assert uninstrument(client) is client
    assert vars(client) == {}
    client.get("a")
    assert names(spans) == []


def test_uninstrument_function_returns_the_original(spans):
    wrapper = instrument(module_level_function)
    original = wrapper.__wrapped__
    assert uninstrument(wrapper) is original
    assert sys.modules[__name__].module_level_function is original
    original(1)
    assert names(spans) == []


def test_uninstrument_module_restores_functions_and_classes(spans, make_module):
    module = make_module(MODULE_SOURCE)
    hello, spin = module.hello, module.Widget.__dict__["spin"]
    instrument(module)
    uninstrument(module)
    assert module.hello is hello
    assert module.Widget.__dict__["spin"] is spin
    module.hello("a")
    module.Widget().spin()
    assert names(spans) == []


def test_uninstrument_by_string_path(spans, make_module):
    module = make_module(MODULE_SOURCE)
    spin = module.Widget.__dict__["spin"]
    instrument(f"{module.__name__}:Widget")
    uninstrument(f"{module.__name__}:Widget")
    assert module.Widget.__dict__["spin"] is spin


def test_uninstrument_all_restores_everything(spans, make_module):
    module = make_module(MODULE_SOURCE)
    client_before, hello = dict(vars(Client)), module.hello
    instrument(Client)
    instrument(module)
    sdk_telemetry.uninstrument_all()
    assert all(vars(Client)[key] is value for key, value in client_before.items())
    assert module.hello is hello
    Client().get("a")
    module.hello("b")
    assert names(spans) == []


def test_instrument_again_after_uninstrument(spans):
    instrument(Client)
    uninstrument(Client)
    instrument(Client)
    Client().get("a")
    assert names(spans) == ["Client.get"]


# --- captured arguments ---------------------------------------------------------------------------


def test_arguments_are_not_recorded_by_default(spans):
    instrument(Account)
    Account().login("bob", password="hunter2")
    span = only(spans, "Account.login")
    assert attr.PROPS not in span.attributes
    assert "hunter2" not in json.dumps(dict(span.attributes))


def test_capture_args_records_keyword_arguments_without_self(spans):
    instrument(Client, capture_args=True)
    Client().put(key="k", value=[1, 2])
    assert props(only(spans, "Client.put")) == {"key": "k", "value": [1, 2]}


def test_capture_args_records_positional_arguments_by_parameter_name(spans):
    instrument(Account, capture_args=True)
    assert Account().login("bob", "hunter2") == "bob"
    span = only(spans, "Account.login")
    assert props(span) == {"user": "bob", "password": "[REDACTED:password]"}
    assert "hunter2" not in span.attributes[attr.PROPS]


def test_capture_args_on_class_and_static_methods_omits_cls(spans):
    instrument(Account, capture_args=True)
    Account.connect("db.local", "tok-1")
    Account.ping("db.local", "key-1")
    assert props(only(spans, "Account.connect")) == {"host": "db.local", "token": "[REDACTED:token]"}
    assert props(only(spans, "Account.ping")) == {"host": "db.local", "api_key": "[REDACTED:api_key]"}


def test_capture_args_on_an_instance_target(spans):
    account = Account()
    instrument(account, capture_args=True)
    account.login("bob", password="hunter2")
    assert props(only(spans, "Account.login")) == {"user": "bob", "password": "[REDACTED:password]"}


def test_capture_args_on_a_function(spans):
    traced = instrument(module_level_function, capture_args=True)
    traced(5)
    assert props(only(spans, f"{THIS_MODULE}.module_level_function")) == {"x": 5}


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("password", "password"),
        ("passwd", "password"),
        ("secret", "secret"),
        ("client_secret", "secret"),
        ("token", "token"),
        ("access_token", "token"),
        ("api_key", "api_key"),
        ("apiKey", "api_key"),
        ("cookie", "cookie"),
    ],
)
def test_capture_args_redacts_secret_keys(spans, key, rule):
    instrument(Account, capture_args=True)
    Account().configure(**{key: "s3cr3t-value"}, region="eu")
    span = only(spans, "Account.configure")
    assert props(span) == {"settings": {key: f"[REDACTED:{rule}]", "region": "eu"}}
    assert "s3cr3t-value" not in span.attributes[attr.PROPS]


@pytest.mark.parametrize("key", ["authorization", "Authorization", "proxy_authorization"])
def test_capture_args_redacts_authorization(spans, key):
    instrument(Account, capture_args=True)
    Account().configure(**{key: "Digest s3cr3t-value"})
    span = only(spans, "Account.configure")
    assert props(span) == {"settings": {key: "[REDACTED:auth]"}}
    assert "s3cr3t-value" not in span.attributes[attr.PROPS]


def test_capture_args_redacts_nested_header_values(spans):
    instrument(Client, capture_args=True)
    Client().put(key="k", value={"headers": {"Cookie": "sid=abc", "X-Api-Key": "xyz", "Accept": "json"}})
    assert props(only(spans, "Client.put")) == {
        "key": "k",
        "value": {"headers": {"Cookie": "[REDACTED:cookie]", "X-Api-Key": "[REDACTED:api_key]", "Accept": "json"}},
    }


def test_capture_args_does_not_redact_author(spans):
    instrument(Account, capture_args=True)
    Account().configure(author="Ada Lovelace", authors=["Ada"])
    assert props(only(spans, "Account.configure")) == {"settings": {"author": "Ada Lovelace", "authors": ["Ada"]}}


def test_capture_args_truncates_long_strings_with_a_marker(spans):
    instrument(Client, capture_args=True)
    long_text = "x" * 2000
    Client().put(key="k", value=long_text)
    recorded = props(only(spans, "Client.put"))["value"]
    assert isinstance(recorded, str)
    assert len(recorded) < len(long_text)
    assert recorded.startswith("x" * 100)
    assert "truncated" in recorded


def test_capturing_a_long_argument_does_not_slow_the_call(spans):
    instrument(Client, capture_args=True)
    blob = "x" * 6000  # e.g. base64 data: one long run of word characters
    started = time.perf_counter()
    assert Client().put(key="k", value=blob) is True
    elapsed = time.perf_counter() - started
    assert "truncated" in props(only(spans, "Client.put"))["value"]
    assert elapsed < 2.0, f"capturing a {len(blob)}-character argument took {elapsed:.2f}s"


def test_capture_args_redacts_bearer_tokens_and_url_query_strings(spans):
    instrument(Client, capture_args=True)
    Client().put(key="Bearer eyJhbGciOi.abc.def", value="see https://api.example.com/v1/items?sig=abc123&x=1 now")
    span = only(spans, "Client.put")
    recorded = props(span)
    assert "eyJhbGciOi" not in span.attributes[attr.PROPS]
    assert "abc123" not in span.attributes[attr.PROPS]
    assert recorded["key"].startswith("Bearer ")
    assert "https://api.example.com/v1/items" in recorded["value"]
    assert recorded["value"].endswith(" now")


def test_capture_args_default_comes_from_configure_telemetry(spans):
    configure_telemetry(exporter="none", capture_args=True)
    instrument(Client)
    Client().get(key="a")
    assert props(only(spans, "Client.get")) == {"key": "a"}


def test_capture_args_false_overrides_the_configured_default(spans):
    configure_telemetry(exporter="none", capture_args=True)
    instrument(Client, capture_args=False)
    Client().get(key="a")
    assert attr.PROPS not in only(spans, "Client.get").attributes


# --- telemetry never raises into the caller -------------------------------------------------------


class _BrokenTracer:
    def start_span(self, *args, **kwargs):
        raise RuntimeError("tracer exploded")

    def start_as_current_span(self, *args, **kwargs):
        raise RuntimeError("tracer exploded")


class _BrokenMetrics:
    def record(self, *args, **kwargs):
        raise RuntimeError("metrics exploded")


class Counted:
    def __init__(self) -> None:
        self.calls = 0

    def run(self, value):
        self.calls += 1
        return value

    def boom(self, exc):
        self.calls += 1
        raise exc

    async def arun(self, value):
        self.calls += 1
        await asyncio.sleep(0)
        return value

    def items(self, *values):
        self.calls += 1
        yield from values

    async def aitems(self, *values):
        self.calls += 1
        for value in values:
            yield value


def test_return_values_are_unchanged(spans):
    instrument(Counted)
    counted = Counted()
    sentinel = object()
    assert counted.run(sentinel) is sentinel
    assert counted.run(None) is None
    assert counted.calls == 2
    assert names(spans) == ["Counted.run", "Counted.run"]


def test_exceptions_propagate_unchanged(spans):
    instrument(Counted)
    counted = Counted()
    error = QuotaError("stop", 429)
    with pytest.raises(QuotaError) as raised:
        counted.boom(error)
    assert raised.value is error
    assert raised.value.code == 429
    assert str(raised.value) == "stop"
    assert counted.calls == 1
    assert names(spans) == ["Counted.boom"]


def test_a_failing_tracer_still_runs_the_call_once(spans, monkeypatch):
    instrument(Counted)
    monkeypatch.setattr(_calls, "_tracer", _BrokenTracer())
    counted = Counted()
    sentinel = object()
    assert counted.run(sentinel) is sentinel
    assert counted.calls == 1
    error = ValueError("own error")
    with pytest.raises(ValueError) as raised:
        counted.boom(error)
    assert raised.value is error
    assert counted.calls == 2
    assert list(counted.items(1, 2)) == [1, 2]
    assert counted.calls == 3
    assert names(spans) == []


async def test_a_failing_tracer_still_runs_async_calls_once(spans, monkeypatch):
    instrument(Counted)
    monkeypatch.setattr(_calls, "_tracer", _BrokenTracer())
    counted = Counted()
    assert await counted.arun("v") == "v"
    assert [item async for item in counted.aitems(1, 2)] == [1, 2]
    assert counted.calls == 2
    assert names(spans) == []


def test_failing_metrics_do_not_break_the_call_or_the_span(spans, monkeypatch):
    instrument(Counted)
    monkeypatch.setattr(_calls, "_metrics", _BrokenMetrics())
    counted = Counted()
    assert counted.run(7) == 7
    assert counted.calls == 1
    assert names(spans) == ["Counted.run"]


def test_an_argument_whose_repr_raises_does_not_break_the_call(spans):
    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    instrument(Counted, capture_args=True)
    counted = Counted()
    hostile = Hostile()
    assert counted.run(hostile) is hostile
    assert counted.calls == 1


def test_instrumenting_something_unsupported_returns_it_unchanged(spans, caplog):
    assert instrument(42) == 42
    assert instrument("no_such_module_for_sdk_telemetry:Thing") == "no_such_module_for_sdk_telemetry:Thing"
    assert "sdk-telemetry" in caplog.text
    assert names(spans) == []


# --- disabled -------------------------------------------------------------------------------------


def _snapshot(cls: type) -> dict[str, object]:
    return dict(vars(cls))


def _unchanged(cls: type, before: dict[str, object]) -> bool:
    after = dict(vars(cls))
    return after.keys() == before.keys() and all(after[key] is value for key, value in before.items())


def test_do_not_track_patches_nothing(monkeypatch):
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    before = _snapshot(Client)
    assert instrument(Client) is Client
    assert _unchanged(Client, before)
    assert instrument(module_level_function) is module_level_function
    client = Client()
    instrument(client)
    assert vars(client) == {}


def test_do_not_track_after_configure_patches_nothing(monkeypatch):
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    telemetry = configure_telemetry(exporter="none")
    assert telemetry.enabled is False
    before = _snapshot(Client)
    instrument(Client)
    assert _unchanged(Client, before)


def test_configure_enabled_false_patches_nothing(make_module):
    configure_telemetry(enabled=False)
    module = make_module(MODULE_SOURCE)
    before, hello = _snapshot(Client), module.hello
    instrument(Client)
    instrument(module)
    assert _unchanged(Client, before)
    assert module.hello is hello

    @instrument
    def decorated():
        return 1

    assert not is_instrumented(decorated)


def test_configure_enabled_false_after_instrumenting_undoes_the_patches(spans, make_module):
    module = make_module(MODULE_SOURCE)
    client_before, derived_before, hello = _snapshot(Client), _snapshot(Derived), module.hello
    instrument(Client)
    instrument(Derived)
    instrument(module)
    client = Client()
    Client().get("a")
    assert names(spans) == ["Client.get"]
    spans.clear()

    configure_telemetry(enabled=False)
    assert _unchanged(Client, client_before)
    assert _unchanged(Derived, derived_before)
    assert module.hello is hello
    client.get("b")
    Derived().shared()
    module.hello("c")
    assert names(spans) == []


def test_logging_is_quiet_on_success(spans, caplog):
    caplog.set_level(logging.DEBUG, logger="sdk_telemetry")
    instrument(Client)
    Client().get("a")
    assert [r for r in caplog.records if r.name.startswith("sdk_telemetry") and r.levelno >= logging.WARNING] == []
    assert names(spans) == ["Client.get"]
