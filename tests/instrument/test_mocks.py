"""`instrument(Subclass)` never freezes an inherited method: a mock patched onto the base class
(`mock.patch.object(Base, ...)`), as a host's own tests do, is what runs, and is still recorded
under the subclass's name. Also on the real `openai` client against a loopback fake of its API."""

from __future__ import annotations

import inspect
from unittest import mock

import openai
import pytest
from openai._base_client import SyncAPIClient

from sdk_telemetry import instrument, is_instrumented, uninstrument
from tests.helpers.llm_api import MODEL
from tests.instrument.conftest import ours


class Transport:
    def request(self, path):
        return f"real {path}"

    def get(self, path):
        return self.request(path)

    @classmethod
    def build(cls):
        return f"built {cls.__name__}"


class Api(Transport):
    def create(self):
        return self.get("/create")


class Beta(Api):
    pass


def test_a_mock_on_the_base_class_runs_after_instrumenting_the_subclass(recorded):
    instrument(Api)
    with mock.patch.object(Transport, "request", return_value="mocked") as fake:
        assert Api().request("/x") == "mocked"
    fake.assert_called_once_with("/x")  # a plain MagicMock is no descriptor: called as the class holds it
    assert Api().request("/y") == "real /y"  # the mock is gone: the real method again
    assert ours(recorded) == ["Api.request", "Api.request"]


def test_an_autospec_mock_on_the_base_gets_the_instance(recorded):
    instrument(Api)
    api = Api()
    with mock.patch.object(Transport, "request", autospec=True, return_value="auto") as fake:
        assert api.request("/x") == "auto"
    fake.assert_called_once_with(api, "/x")
    assert ours(recorded) == ["Api.request"]


def test_replacing_the_base_method_is_seen_by_the_instrumented_subclass(recorded):
    instrument(Api)
    original = Transport.__dict__["request"]
    try:
        Transport.request = lambda self, path: f"replaced {path}"
        assert Api().request("/z") == "replaced /z"
    finally:
        Transport.request = original
    assert Api().request("/z") == "real /z"
    assert ours(recorded) == ["Api.request", "Api.request"]


def test_the_subclass_dict_holds_no_copy_of_the_base_method(recorded):
    instrument(Api)
    assert Api.__dict__["request"] is not Transport.__dict__["request"]
    assert is_instrumented(Api.__dict__["request"])
    assert not is_instrumented(Transport.__dict__["request"])  # the base is untouched
    assert Transport().request("/t") == "real /t"
    assert Api.build() == "built Api"  # a classmethod binds to the subclass
    assert ours(recorded) == ["Api.build"]


def test_a_subclass_of_the_instrumented_class_is_recorded_and_mockable(recorded):
    instrument(Api)
    with mock.patch.object(Transport, "request", return_value="mocked"):
        assert Beta().request("/b") == "mocked"
    assert Beta().create() == "real /create"
    assert "Api.request" in ours(recorded) and "Api.create" in ours(recorded)


def test_instrumenting_base_and_subclass_records_one_span_per_call(recorded):
    instrument(Transport)
    instrument(Api)
    with mock.patch.object(Transport, "request", return_value="mocked"):
        assert Api().request("/x") == "mocked"  # the mock replaced the base's wrapper: only Api's span
    assert Api().request("/x") == "real /x"
    assert Transport().request("/x") == "real /x"
    assert ours(recorded) == ["Api.request", "Api.request", "Transport.request"]


def test_uninstrument_restores_the_subclass_dict_exactly(recorded):
    base_before, api_before = dict(vars(Transport)), dict(vars(Api))
    instrument(Api)
    uninstrument(Api)
    assert dict(vars(Api)) == api_before
    assert all(vars(Api)[key] is value for key, value in api_before.items())
    assert dict(vars(Transport)) == base_before


def test_a_mock_on_openai_sync_api_client_request_is_what_runs(recorded, llm_api):
    before = dict(vars(openai.OpenAI))
    instrument(openai.OpenAI)
    client = openai.OpenAI(api_key="sk-test", base_url=llm_api.openai_url, max_retries=0)
    answer = object()
    with mock.patch.object(SyncAPIClient, "request", autospec=True, return_value=answer) as fake:
        result = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert result is answer
    assert fake.call_count == 1 and fake.call_args.args[0] is client
    assert llm_api.requests == []  # no real request went out
    assert "OpenAI.post" in ours(recorded)

    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert llm_api.paths() == ["/v1/chat/completions"]  # after the mock: the real request
    uninstrument(openai.OpenAI)
    assert dict(vars(openai.OpenAI)) == before


def test_an_autospec_mock_on_the_instrumented_subclass_itself(recorded):
    instrument(Api)
    api = Api()
    with mock.patch.object(Api, "request", autospec=True, return_value="sub auto") as fake:
        assert api.request("/s") == "sub auto"
        with pytest.raises(TypeError):
            api.request("/s", "too many")  # the autospec has the real signature
    fake.assert_called_once_with(api, "/s")
    assert is_instrumented(vars(Api)["request"])  # put back when the mock ends
    assert api.request("/s") == "real /s"
    assert ours(recorded) == ["Api.request"]
    assert inspect.signature(vars(Api)["request"]) == inspect.signature(Transport.request)


def test_the_inherited_method_in_the_class_dict_behaves_as_the_function(recorded):
    instrument(Api)
    api = Api()
    assert vars(Api)["request"](api, "/d") == "real /d"
    assert Api.request(api, "/e") == "real /e"
    assert vars(Api)["request"].__name__ == "request"
    assert ours(recorded) == ["Api.request", "Api.request"]
