"""Instrumented callables survive `pickle`, `copy.copy`, `copy.deepcopy` and a trip to a worker
process (`ProcessPoolExecutor().submit`) as the callables they wrap do: a module-level function by
reference (it loads as the module attribute, the instrumented one), a bound method as its instance
and name, a method instrumented on one instance as that method of the loaded copy."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from sdk_telemetry import instrument, is_instrumented, uninstrument
from tests.instrument.conftest import ours


def double(x):
    return x * 2


@instrument
def triple(x):
    return x * 3


@instrument(name="pickle.named")
def named(x):
    return -x


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self, punctuation="!"):
        return f"hi {self.name}{punctuation}"

    @classmethod
    def kind(cls):
        return cls.__name__

    @staticmethod
    def shout(text):
        return text.upper()


def triple_is_instrumented_here() -> bool:
    """Run in a worker process: is this module's `triple` the instrumented one there too?"""
    return is_instrumented(triple)


def round_trip(obj):
    return pickle.loads(pickle.dumps(obj))


@pytest.fixture
def pool():
    with ProcessPoolExecutor(max_workers=1) as executor:
        yield executor


def test_an_instrumented_module_function_pickles_as_the_module_attribute(recorded):
    wrapper = instrument(double)
    assert round_trip(wrapper) is wrapper
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(wrapper, protocol)) is wrapper
    assert copy.copy(wrapper) is wrapper
    assert copy.deepcopy(wrapper) is wrapper
    assert round_trip(wrapper)(4) == 8
    assert ours(recorded) == ["test_pickle.double"]


def test_after_uninstrument_the_pickled_reference_loads_the_original(recorded):
    data = pickle.dumps(instrument(double))
    original = uninstrument(double)
    assert pickle.loads(data) is original


@pytest.mark.parametrize("decorated", [triple, named], ids=["bare", "named"])
def test_a_decorated_function_pickles_and_copies(recorded, decorated):
    assert is_instrumented(decorated)
    assert round_trip(decorated) is decorated
    assert copy.copy(decorated) is decorated
    assert copy.deepcopy(decorated) is decorated
    assert round_trip(decorated)(2) in (6, -2)
    assert ours(recorded) == [decorated.telemetry_name]


def test_a_wrapper_that_is_no_module_attribute_pickles_by_value_and_stays_instrumented(recorded):
    def local(x):
        return x

    wrapper = instrument(local)
    with pytest.raises((pickle.PicklingError, AttributeError)):  # as the bare local function does
        pickle.dumps(wrapper)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(local)
    wrapper = instrument(Greeter.shout)  # a function reached through its class: no module attribute
    loaded = round_trip(wrapper)
    assert loaded is not wrapper and is_instrumented(loaded) and loaded("a") == "A"
    assert copy.deepcopy(wrapper) is wrapper
    assert ours(recorded) == ["Greeter.shout"]


def test_a_bound_method_of_an_instrumented_class_pickles_and_copies(recorded):
    instrument(Greeter)
    greeter = Greeter("ann")
    method = greeter.greet
    loaded = round_trip(method)
    assert is_instrumented(loaded)
    assert loaded() == "hi ann!"
    assert loaded.__self__ is not greeter and loaded.__self__.name == "ann"
    assert copy.copy(method)("?") == "hi ann?"
    deep = copy.deepcopy(method)
    assert deep.__self__ is not greeter and deep() == "hi ann!"
    assert round_trip(Greeter.kind)() == "Greeter"
    assert ours(recorded) == ["Greeter.greet", "Greeter.greet", "Greeter.greet", "Greeter.kind"]


def test_a_method_instrumented_on_one_instance_pickles_with_its_instance(recorded):
    greeter = Greeter("bo")
    instrument(greeter)
    method = greeter.greet
    assert is_instrumented(method)
    loaded = round_trip(method)
    assert loaded() == "hi bo!"
    copy_of_greeter = loaded.__self__
    assert copy_of_greeter is not greeter and copy_of_greeter.name == "bo"
    assert copy_of_greeter.greet is loaded  # the loaded instance holds it, bound to itself
    assert copy.copy(method) is method
    assert ours(recorded) == ["Greeter.greet"]


def test_an_instrumented_instance_pickles_and_deep_copies_bound_to_the_copy(recorded):
    greeter = Greeter("cy")
    instrument(greeter)
    for duplicate in (round_trip(greeter), copy.deepcopy(greeter)):
        assert duplicate.name == "cy"
        assert duplicate.greet.__self__ is duplicate
        assert duplicate.greet() == "hi cy!"
        uninstrument(duplicate)  # not registered here: its wrappers are found in its __dict__
        assert vars(duplicate) == {"name": "cy"}
    assert ours(recorded) == ["Greeter.greet", "Greeter.greet"]


def test_instrumented_callables_run_in_a_process_pool(recorded, pool):
    instrument(double)
    instrument(Greeter)
    instance_only = Greeter("dee")
    assert pool.submit(double, 21).result(timeout=60) == 42
    assert pool.submit(triple, 2).result(timeout=60) == 6
    assert pool.submit(named, 2).result(timeout=60) == -2
    assert pool.submit(Greeter("eve").greet, ".").result(timeout=60) == "hi eve."
    uninstrument(Greeter)
    instrument(instance_only)
    assert pool.submit(instance_only.greet).result(timeout=60) == "hi dee!"


def test_a_spawned_worker_loads_the_decorated_function_as_the_instrumented_one():
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(triple, 3).result(timeout=120) == 9
        assert pool.submit(triple_is_instrumented_here).result(timeout=120) is True


def test_uninstrument_gives_a_decorated_module_function_back(recorded):
    module = sys.modules[__name__]
    wrapper = vars(module)["triple"]
    try:
        original = uninstrument(wrapper)
        assert vars(module)["triple"] is original and not is_instrumented(original)
        assert pickle.loads(pickle.dumps(original)) is original
        assert original(1) == 3
        assert ours(recorded) == []
    finally:
        vars(module)["triple"] = wrapper  # the module as it was imported, for the other tests
