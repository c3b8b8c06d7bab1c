"""Property-based: secrets planted at random depths, under secret keys, inside keys and inside strings,
sent through every path that leaves the process (captured props, span attributes, events,
exception messages and stack traces, status messages), are found neither on the Composio wire,
nor in the local store, nor in an OTLP body — while the ordinary data next to them still arrives."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from sdk_telemetry import instrument
from sdk_telemetry.privacy import PrivacySettings

EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


# --- what a planted secret looks like, and where it hides --------------------------------------------

# "Zq" and upper-case hex: easy to find in any output, and no rule's word can form inside it.
secrets = st.binary(min_size=8, max_size=8).map(lambda raw: "Zq" + raw.hex().upper())
canaries = st.binary(min_size=6, max_size=6).map(lambda raw: "keep" + raw.hex())
secret_keys = st.builds(
    lambda prefix, word, suffix, upper: (prefix + word + suffix).upper() if upper else prefix + word + suffix,
    st.sampled_from(["", "db_", "x-", "client.", "user_"]),
    st.sampled_from(
        [
            "password",
            "passwd",
            "secret",
            "token",
            "auth",
            "Authorization",
            "credential",
            "private_key",
            "apiKey",
            "api-key",
            "session",
            "cookie",
            "csrf",
            "xsrf",
            "jwt",
            "ssn",
            "credit_card",
        ]
    ),
    st.sampled_from(["", "_value", "-id"]),
    st.booleans(),
)
words = st.lists(
    st.sampled_from(["request", "failed", "for", "user", "with", "retry", "now", "id 42"]), max_size=3
).map(" ".join)


def _luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it pass the Luhn test."""
    for check in "0123456789":
        digits = body + check
        total = 0
        for index, char in enumerate(reversed(digits)):
            number = int(char) * (2 if index % 2 else 1)
            total += number - 9 if number > 9 else number
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


cards = st.builds(
    lambda first, rest, spaced: (lambda n: " ".join(n[i : i + 4] for i in range(0, 16, 4)) if spaced else n)(
        _luhn_complete(first + rest)
    ),
    st.sampled_from("3456"),
    st.text(alphabet="0123456789", min_size=14, max_size=14),
    st.booleans(),
)


@st.composite
def secret_in_text(draw: st.DrawFn) -> tuple[str, str]:
    """Free text with one secret in a recognisable place; returns (text, secret)."""
    secret = draw(secrets)
    shape = draw(st.integers(0, 8))
    if shape == 0:
        inner = f"https://api.example.com/v1/items?{draw(st.sampled_from(['sig', 'q', 'code']))}={secret}&page=2"
    elif shape == 1:
        inner = f"{draw(st.sampled_from(['Bearer', 'bearer', 'Basic']))} {secret}"
    elif shape == 2:
        inner = f"{draw(secret_keys)}={secret}"
    elif shape == 3:
        inner = f'{{"{draw(secret_keys)}": "{secret}"}}'
    elif shape == 4:
        inner = f"{{'{draw(secret_keys)}': '{secret}'}}"
    elif shape == 5:
        inner = f"{draw(secret_keys)}: {secret}"
    elif shape == 6:
        inner = f"eyJhbGciOiJIUzI1NiJ9.{secret}.c2ln"
    elif shape == 7:
        inner = f"postgres://bob:{secret}@db.local:5432/app"
    else:
        secret = draw(cards)
        inner = f"card {secret}"
    return f"{draw(words)} {inner} {draw(words)}".strip(), secret


@st.composite
def planted_structure(draw: st.DrawFn, depth: int = 0) -> tuple[Any, list[str]]:
    """A nested structure of dicts and lists with secrets planted in it; returns (structure, secrets)."""
    planted: list[str] = []
    result: dict[str, Any] = {}
    for index in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5 if depth < 3 else 3))
        if kind == 0:  # a secret under a secret key, maybe wrapped in a list or a dict
            secret = draw(secrets)
            wrap = draw(st.integers(0, 2))
            result[draw(secret_keys)] = [secret] if wrap == 1 else {"inner": secret} if wrap == 2 else secret
            planted.append(secret)
        elif kind == 1:  # a secret inside a string value
            text, secret = draw(secret_in_text())
            result[f"text{index}"] = text
            planted.append(secret)
        elif kind == 2:  # a secret inside a key
            text, secret = draw(secret_in_text())
            result[text] = index
            planted.append(secret)
        elif kind == 3:  # ordinary data
            result[f"plain{index}"] = draw(st.one_of(st.integers(), st.booleans(), words))
        elif kind == 4:  # deeper
            child, child_secrets = draw(planted_structure(depth + 1))
            result[f"nested{index}"] = child
            planted.extend(child_secrets)
        else:  # a list of deeper structures
            child, child_secrets = draw(planted_structure(depth + 1))
            result[f"list{index}"] = [child, draw(words)]
            planted.extend(child_secrets)
    return result, planted


class Client:
    def call(self, payload: Any, note: str) -> str:
        return "ok"

    def annotate(self, attributes: dict[str, Any], event: dict[str, Any], status: str, nested: Any) -> None:
        span = trace.get_current_span()
        for key, value in attributes.items():
            span.set_attribute(key, value)
        span.set_attribute("nested", nested)  # a map value: the SDK takes those too
        span.add_event("planted", event)
        span.set_status(Status(StatusCode.ERROR, status))

    def fail(self, message: str, inner: str) -> None:
        try:
            raise KeyError(inner)
        except KeyError as exc:
            raise ValueError(message) from exc


def as_attributes(structure: dict[str, Any]) -> dict[str, Any]:
    """Flatten a planted structure into span attributes: dotted keys, primitive or string-list values."""
    flat: dict[str, Any] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(value, list):
            flat[prefix] = [str(item) for item in value if not isinstance(item, (dict, list))] or ["-"]
            for item in value:
                if isinstance(item, (dict, list)):
                    walk(item, prefix)
        else:
            flat[prefix] = value

    walk(structure, "")
    return flat


# --- the properties ----------------------------------------------------------------------------


@EXAMPLES
@given(data=st.data())
def test_no_planted_secret_leaves_the_process(pipeline, data):
    if not hasattr(pipeline, "telemetry"):
        pipeline.configure(capture_args=True, service_name="props-test")
        instrument(Client)
    client = Client()
    structure, planted = data.draw(planted_structure(), label="structure")
    note, note_secret = data.draw(secret_in_text(), label="note")
    attributes, attribute_secrets = data.draw(planted_structure(), label="attributes")
    event, event_secrets = data.draw(planted_structure(), label="event")
    status, status_secret = data.draw(secret_in_text(), label="status")
    message, message_secret = data.draw(secret_in_text(), label="message")
    inner, inner_secret = data.draw(secret_in_text(), label="inner")
    canary = data.draw(canaries, label="canary")

    client.call({"region": canary, **structure}, note)
    client.annotate(as_attributes(attributes), as_attributes(event), status, attributes)
    with pytest.raises(ValueError):
        client.fail(message, inner)
    pipeline.flush()

    everything = pipeline.everything()
    for secret in [*planted, note_secret, *attribute_secrets, *event_secrets, status_secret]:
        assert secret not in everything
    for secret in (message_secret, inner_secret):
        assert secret not in everything
    # The ordinary data arrived, on every path.
    assert canary in everything
    assert any(p.get("props", {}).get("payload", {}).get("region") == canary for p in pipeline.payloads())
    assert any(row["SpanName"] == "Client.fail" for row in pipeline.rows())
    assert any(span.name == "Client.fail" for span in pipeline.otlp_spans())


@settings(max_examples=150, deadline=None)
@given(structure=planted_structure())
def test_sanitize_removes_every_planted_secret(structure):
    value, planted = structure
    scrubbed = repr(PrivacySettings().scrubber.structure(value))
    for secret in planted:
        assert secret not in scrubbed


@settings(max_examples=150, deadline=None)
@given(planted=secret_in_text(), before=words, after=words)
def test_free_text_loses_the_secret_and_keeps_the_words_around_it(planted, before, after):
    text, secret = planted
    redacted = PrivacySettings().scrubber.text(f"{before} | {text} | {after}", ())
    assert secret not in redacted
    assert redacted.startswith(f"{before} | ")
    assert redacted.endswith(f" | {after}")


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_redaction_never_fails_and_is_idempotent(text):
    scrubber = PrivacySettings().scrubber
    once = scrubber.text(text, ())
    assert scrubber.text(once, ()) == once
    assert isinstance(scrubber.structure({"k": text}, (), 0), dict)
