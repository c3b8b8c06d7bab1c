"""Error messages keep their words: an exception's type name is not a secret key, while real
secrets in a message are still removed (through the Composio, local and OTLP exporters alike)."""

from __future__ import annotations

import json

import openai
import pytest

from sdk_telemetry import instrument
from tests.helpers.llm_api import FakeLLMAPI
from tests.helpers.privacy import Pipeline, span_attributes


class AuthenticationError(Exception):
    pass


class SessionExpired(Exception):
    pass


class TokenError(Exception):
    pass


class AuthFailed(Exception):
    pass


MESSAGES = [
    (AuthenticationError, "request for user 42 rejected"),
    (SessionExpired, "the session of user 42 ended at noon"),
    (TokenError, "refresh was refused by the server"),
    (AuthFailed, "no such account"),
]


def _raise(kind: type[Exception], message: str) -> None:
    raise kind(message)


@pytest.mark.parametrize(("kind", "message"), MESSAGES, ids=[kind.__name__ for kind, _ in MESSAGES])
def test_an_exception_type_name_is_not_a_secret_key(pipeline: Pipeline, kind: type[Exception], message: str) -> None:
    pipeline.configure()
    call = instrument(_raise, name="sdk.call")
    with pytest.raises(kind):
        call(kind, message)
    pipeline.flush()

    (row,) = pipeline.rows()
    expected = f"{kind.__name__}: {message}"
    assert row["StatusMessage"] == expected
    attributes = span_attributes(row)
    assert attributes["error.type"].endswith(kind.__name__)
    events = json.loads(row["Events.Attributes"]) if "Events.Attributes" in row else None
    stored = json.dumps(row)
    assert message in stored and "[REDACTED" not in stored, stored
    if events is not None:
        assert any(event.get("exception.message") == message for event in events)
    (otlp,) = pipeline.otlp_spans()
    assert otlp.status.message == expected
    (stack,) = [a.value.string_value for e in otlp.events for a in e.attributes if a.key == "exception.stacktrace"]
    assert f"{kind.__name__}: {message}" in stack, stack
    (payload,) = pipeline.payloads()
    assert message in json.dumps(payload), payload
    assert "[REDACTED" not in pipeline.everything()


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("request rejected: api_key=sk-live-0123456789abcdef", "sk-live-0123456789abcdef"),
        ("token=abcdef0123456789 was refused", "abcdef0123456789"),
        ("sent Authorization: Bearer abc.def.ghi and failed", "abc.def.ghi"),
        ("Incorrect API key provided: sk-proj-AbCdEf0123456789AbCdEf0123", "sk-proj-AbCdEf0123456789AbCdEf0123"),
        ("bad key sk_live_51HqLyjWDarjtT1zdp7dcXYZ1234", "sk_live_51HqLyjWDarjtT1zdp7dcXYZ1234"),
        ("login with password: hunter2 for user 42", "hunter2"),
    ],
)
def test_secrets_in_an_error_message_are_still_removed(pipeline: Pipeline, message: str, secret: str) -> None:
    pipeline.configure()
    call = instrument(_raise, name="sdk.call")
    with pytest.raises(AuthenticationError):
        call(AuthenticationError, message)
    pipeline.flush()

    everything = pipeline.everything()
    assert secret not in everything
    (row,) = pipeline.rows()
    assert row["StatusMessage"].startswith("AuthenticationError: "), row["StatusMessage"]
    assert "[REDACTED" in row["StatusMessage"]
    for word in message.replace(secret, "").split():  # the words around the secret are kept
        assert word in row["StatusMessage"], (word, row["StatusMessage"])


def test_a_real_openai_authentication_error_keeps_its_words(pipeline: Pipeline) -> None:
    """The real `openai.AuthenticationError` (a 401 from a loopback fake of the API): its type name
    and message survive; the key the server echoes back is removed."""
    pipeline.configure()
    key = "sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe"
    with FakeLLMAPI() as api:
        api.fail(401, code="invalid_api_key", message=f"Incorrect API key provided: {key}. Check your account")
        client = openai.OpenAI(base_url=api.openai_url, api_key=key, max_retries=0)
        instrument(openai.resources.chat.completions.Completions, include="create")
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    pipeline.flush()

    (row,) = [row for row in pipeline.rows() if row["SpanName"] == "Completions.create"]
    assert row["StatusMessage"].startswith("AuthenticationError: Error code: 401"), row["StatusMessage"]
    assert "Incorrect API key provided" in row["StatusMessage"]
    assert "Check your account" in row["StatusMessage"]
    assert key not in pipeline.everything()
