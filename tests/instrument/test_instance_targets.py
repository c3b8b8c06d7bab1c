"""`instrument(instance)` runs none of the host's code: methods are found statically (no property,
cached property or `__getattr__` runs), wrappers go straight into the instance's `__dict__` (never
through its `__setattr__`), and every patch is recorded before the next, so that `uninstrument`
undoes even an instrumentation that failed half-way. On the real `openai` and `stripe` objects."""

from __future__ import annotations

import functools
import sys
import time
import types
import warnings
from typing import ClassVar

import openai
import pytest
import stripe

from sdk_telemetry import instrument, is_instrumented, uninstrument
from sdk_telemetry.instrument import targets
from tests.instrument.conftest import ours


class Watched:
    """Counts every piece of its own code that runs on attribute access."""

    runs: ClassVar[list[str]] = []

    def __init__(self):
        object.__setattr__(self, "token", "t")

    @property
    def expensive(self):
        Watched.runs.append("property")
        return 1

    @functools.cached_property
    def lazy(self):
        Watched.runs.append("cached_property")
        return 2

    def __getattr__(self, name):
        Watched.runs.append(f"__getattr__ {name}")
        raise AttributeError(name)

    def __setattr__(self, name, value):
        Watched.runs.append(f"__setattr__ {name}")
        object.__setattr__(self, name, value)

    def fetch(self, key):
        return f"got {key}"

    @classmethod
    def build(cls):
        return cls.__name__

    @staticmethod
    def ping():
        return "pong"


@pytest.fixture(autouse=True)
def no_runs():
    Watched.runs = []


def test_instrumenting_an_instance_runs_no_property_getattr_or_setattr(recorded):
    watched = Watched()
    instrument(watched)
    assert Watched.runs == []
    assert "lazy" not in vars(watched)
    assert watched.fetch("k") == "got k"
    assert watched.build() == "Watched"
    assert watched.ping() == "pong"
    assert ours(recorded) == ["Watched.fetch", "Watched.build", "Watched.ping"]
    assert Watched.runs == []


def test_uninstrument_restores_the_instance_dict_exactly(recorded):
    watched = Watched()
    before = dict(vars(watched))
    instrument(watched)
    assert set(vars(watched)) == {"token", "fetch", "build", "ping"}
    uninstrument(watched)
    assert vars(watched) == before
    assert Watched.runs == []


def test_a_failure_half_way_is_undone_by_uninstrument(recorded, monkeypatch, caplog):
    made = []
    real_spec = targets.make_spec

    def failing_on_the_second(*args, **kwargs):
        if made:
            raise RuntimeError("spec failed")
        made.append(real_spec(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(targets, "make_spec", failing_on_the_second)
    watched = Watched()
    before = dict(vars(watched))
    assert instrument(watched) is watched  # logged, never raised
    assert "instrumenting" in caplog.text
    assert len(vars(watched)) == len(before) + 1  # one method was patched before the failure
    uninstrument(watched)
    assert vars(watched) == before


def test_an_instance_attribute_holding_a_function_is_wrapped_and_given_back(recorded):
    watched = Watched()
    handler = lambda: "handled"  # noqa: E731
    object.__setattr__(watched, "handler", handler)
    instrument(watched)
    assert watched.handler() == "handled"
    assert ours(recorded) == ["Watched.handler"]
    uninstrument(watched)
    assert vars(watched)["handler"] is handler


def test_an_openai_client_is_instrumented_without_imports_warnings_or_properties(recorded, llm_api):
    client = openai.OpenAI(api_key="sk-test", base_url=llm_api.openai_url, max_retries=0)
    before = dict(vars(client))
    modules = len(sys.modules)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        started = time.perf_counter()
        instrument(client)
        elapsed = time.perf_counter() - started
    assert len(sys.modules) == modules  # no lazy resource was created (a cached property imports one)
    assert elapsed < 2.0, f"instrument(client) took {elapsed:.2f}s"
    assert set(vars(client)) - set(before) >= {"post", "request", "copy"}
    assert not {"chat", "responses", "files"} & set(vars(client))  # cached properties never ran
    assert all(vars(client)[key] is value for key, value in before.items())

    client.models.list()
    assert "OpenAI.get_api_list" in ours(recorded)
    assert llm_api.paths() == ["/v1/models"]
    uninstrument(client)
    after = dict(vars(client))
    after.pop("models")  # created by the call above, as without telemetry
    assert after == before


def test_a_stripe_object_serialises_the_same_after_instrumenting(recorded):
    customer = stripe.Customer.construct_from({"id": "cus_1", "name": "Ann", "email": "a@example.com"}, "sk_test_x")
    customer.name = "Bo"  # an unsaved change: what save() would send
    data, sent, state = customer.to_dict(), customer.serialize(None), dict(vars(customer))
    instrument(customer)
    assert any(is_instrumented(value) for value in vars(customer).values())
    assert customer.to_dict() == data
    assert customer.serialize(None) == sent == {"name": "Bo"}
    assert customer._unsaved_values == {"name"}
    assert "Customer.to_dict" in ours(recorded)
    uninstrument(customer)
    assert vars(customer) == state


class LazyProxy:
    """Stands in for an SDK's lazy proxy (openai's `openai.chat`): asking its class loads the target."""

    @property
    def __class__(self):
        Watched.runs.append("proxy __class__")
        return type(self)

    def __getattr__(self, name):
        Watched.runs.append(f"proxy {name}")
        raise AttributeError(name)


def test_lazy_proxies_in_an_instance_or_a_module_are_never_asked_anything(recorded):
    watched = Watched()
    object.__setattr__(watched, "resource", LazyProxy())
    instrument(watched)
    module = types.ModuleType("lazy_surface_module")
    module.chat = LazyProxy()
    module.fetch = lambda: "fetched"
    module.fetch.__module__ = module.__name__
    instrument(module)
    assert Watched.runs == []
    assert module.fetch() == "fetched" and watched.fetch("x") == "got x"
    assert not is_instrumented(LazyProxy())
    uninstrument(module)
    uninstrument(watched)
    assert Watched.runs == []
    assert ours(recorded) == ["lazy_surface_module.fetch", "Watched.fetch"]
