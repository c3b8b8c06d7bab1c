"""Scrubbing: default rules on keys, values and free text, every configuration switch, truncation,
minimisation and the counts — checked on what the Composio endpoint, the local store and an OTLP
endpoint actually received."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.config import state
from sdk_telemetry.config.settings import Settings
from sdk_telemetry.pipeline import prepare
from sdk_telemetry.privacy import PrivacySettings, ScrubMatch
from sdk_telemetry.privacy import scrubber as scrubber_module
from tests.helpers.privacy import Pipeline, span_attributes

# --- the pipeline under test: three exporters, one loopback server, one store file -------------


def rows_named(pipeline: Pipeline, name: str) -> list[dict[str, Any]]:
    return [row for row in pipeline.rows() if row["SpanName"] == name]


class Client:
    def call(self, payload: Any = None, **kwargs: Any) -> str:
        return "ok"

    def annotate(self, attributes: dict[str, Any]) -> None:
        span = trace.get_current_span()
        for key, value in attributes.items():
            span.set_attribute(key, value)

    def event(self, name: str, attributes: dict[str, Any]) -> None:
        trace.get_current_span().add_event(name, attributes)

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def fail_chained(self, inner: str) -> None:
        try:
            raise KeyError(inner)
        except KeyError as exc:
            raise RuntimeError("wrapped failure") from exc


# --- the default rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("password", "password"),
        ("db_passwd", "password"),
        ("mysql_pwd", "password"),
        ("client_secret", "secret"),
        ("refresh_token", "token"),
        ("Authorization", "auth"),
        ("oauth_state", "auth"),
        ("aws_credentials", "credential"),
        ("private_key", "private_key"),
        ("X-Api-Key", "api_key"),
        ("apikey", "api_key"),
        ("session_cookie", "session"),
        ("Cookie", "cookie"),
        ("csrf_value", "csrf"),
        ("XSRF-TOKEN", "xsrf"),
        ("jwt", "jwt"),
        ("user_ssn", "ssn"),
        ("social_security_number", "ssn"),
        ("credit_card", "credit_card"),
        ("card_number", "credit_card"),
    ],
)
def test_default_rules_match_keys_and_name_the_rule(key, rule):
    scrubbed = PrivacySettings().scrubber.structure({key: "value-1", "region": "eu"})
    assert scrubbed == {key: f"[REDACTED:{rule}]", "region": "eu"}


@pytest.mark.parametrize("key", ["author", "authors", "author_name", "passenger", "compass", "classname", "region"])
def test_lookalike_keys_are_kept(key):
    assert PrivacySettings().scrubber.structure({key: "Ada"}) == {key: "Ada"}


def test_a_structured_string_value_holding_a_rule_word_is_replaced_whole():
    scrubbed = PrivacySettings().scrubber.structure({"note": "the password is hunter2", "other": "fine"})
    assert scrubbed == {"note": "[REDACTED:password]", "other": "fine"}


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("GET https://api.example.com/v1/items?sig=abc123&x=1 failed", "abc123", "https://api.example.com/v1/items?"),
        ("connect postgres://bob:hunter2@db.local:5432/app refused", "hunter2", "@db.local:5432/app refused"),
        ("header Bearer eyJabc.def.ghi rejected", "eyJabc", "header Bearer "),
        ("header Basic dXNlcjpwYXNz rejected", "dXNlcjpwYXNz", "header Basic "),
        ("config password=hunter2 rejected", "hunter2", "config password="),
        ('body {"api_key": "sk live 1"} rejected', "sk live 1", '{"api_key": "'),
        ("body {'client_secret': 'q\\'x'} rejected", "q\\'x", "{'client_secret': '"),
        ("X-Auth-Token: tok-9 rejected", "tok-9", "X-Auth-Token: "),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl seen", "eyJzdWIiOiIxIn0", "jwt "),
        ("card 4111 1111 1111 1111 declined", "4111 1111 1111 1111", " declined"),
        ("card 5500-0000-0000-0004 declined", "5500-0000-0000-0004", " declined"),
    ],
)
def test_free_text_keeps_its_words_and_loses_its_secrets(text, secret, kept):
    redacted = PrivacySettings().scrubber.text(text, ())
    assert secret not in redacted
    assert kept in redacted
    assert "[REDACTED:" in redacted


@pytest.mark.parametrize(
    "text",
    ["order 1700000000000 shipped", "id 4111111111111112 (fails Luhn)", "invalid token provided", "author=Ada"],
)
def test_free_text_without_secrets_is_unchanged(text):
    assert PrivacySettings().scrubber.text(text, ()) == text


def test_redaction_is_idempotent_and_counted_once():
    scrubber = PrivacySettings().scrubber
    before = scrubber_module.stats()["scrubbed"]
    once = scrubber.text("password=hunter2 and Bearer abc", ())
    assert scrubber_module.stats()["scrubbed"] == before + 2
    assert scrubber.text(once, ()) == once
    assert scrubber.structure({"password": once, "note": once}) == {
        "password": "[REDACTED:password]",
        "note": "[REDACTED:password]",
    }


# --- through the pipeline: props, attributes, events, errors ----------------------------------------


def test_by_default_no_arguments_leave_and_error_text_is_redacted_everywhere(pipeline):
    pipeline.configure()
    instrument(Client)
    client = Client()
    client.call({"password": "hunter2-default"})
    with pytest.raises(ValueError):
        client.fail("GET https://api.example.com/x?api_key=sk-live-default failed")
    pipeline.flush()
    everything = pipeline.everything()
    assert "hunter2-default" not in everything
    assert "sk-live-default" not in everything
    error = next(p for p in pipeline.payloads() if p["functionName"] == "Client.fail")["error"]
    assert error["message"] == "GET https://api.example.com/x?[REDACTED:url_query] failed"
    assert "[REDACTED:url_query]" in error["stack"]
    assert "props" not in next(p for p in pipeline.payloads() if p["functionName"] == "Client.call")
    (row,) = rows_named(pipeline, "Client.fail")
    assert row["StatusMessage"] == "ValueError: GET https://api.example.com/x?[REDACTED:url_query] failed"


def test_span_attributes_events_and_status_of_any_span_are_scrubbed(pipeline):
    pipeline.configure()
    instrument(Client)
    client = Client()
    client.annotate({"db.password": "pw-attr", "http.url": "https://h/p?token=tok-attr", "region": "eu"})
    client.event("login", {"session_cookie": "cookie-event", "note": "Bearer bearer-event", "count": 3})
    tracer = trace.get_tracer("someone.else")
    with tracer.start_as_current_span("outside") as span:
        span.set_attribute("user.api_key", "key-outside")
        span.set_status(Status(StatusCode.ERROR, "denied: secret=status-secret"))
    pipeline.flush()
    everything = pipeline.everything()
    for secret in ("pw-attr", "tok-attr", "cookie-event", "bearer-event", "key-outside", "status-secret"):
        assert secret not in everything
    (annotated,) = rows_named(pipeline, "Client.annotate")
    assert span_attributes(annotated)["db.password"] == "[REDACTED:password]"
    assert span_attributes(annotated)["http.url"] == "https://h/p?[REDACTED:url_query]"
    assert span_attributes(annotated)["region"] == "eu"
    (evented,) = rows_named(pipeline, "Client.event")
    (event,) = json.loads(evented["Events"])
    assert event["Attributes"] == {
        "session_cookie": "[REDACTED:session]",
        "note": "Bearer [REDACTED:bearer]",
        "count": 3,
    }
    (outside,) = rows_named(pipeline, "outside")
    assert outside["StatusMessage"] == "denied: secret=[REDACTED:secret]"
    otlp = {span.name: span for span in pipeline.otlp_spans()}
    assert otlp["outside"].status.message == "denied: secret=[REDACTED:secret]"


def test_session_id_is_safe_listed(pipeline):
    pipeline.configure()
    instrument(Client)
    Client().annotate({attr.SESSION_ID: "sess-1234", "session.other": "s-1"})
    pipeline.flush()
    (row,) = rows_named(pipeline, "Client.annotate")
    assert span_attributes(row)[attr.SESSION_ID] == "sess-1234"
    assert span_attributes(row)["session.other"] == "[REDACTED:session]"


def test_stack_traces_lose_secrets_of_chained_exceptions(pipeline):
    pipeline.configure()
    instrument(Client)
    with pytest.raises(RuntimeError):
        Client().fail_chained("token=chained-secret")
    pipeline.flush()
    assert "chained-secret" not in pipeline.everything()
    (payload,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.fail_chained"]
    assert "KeyError: 'token=[REDACTED:token]'" in payload["error"]["stack"]


def test_captured_props_are_scrubbed_on_the_wire(pipeline):
    pipeline.configure(capture_args=True)
    instrument(Client)
    Client().call({"user": "bob", "headers": {"Authorization": "Bearer abc-props"}, "note": "ok"})
    pipeline.flush()
    (payload,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    assert payload["props"] == {
        "payload": {"user": "bob", "headers": {"Authorization": "[REDACTED:auth]"}, "note": "ok"}
    }
    assert "abc-props" not in pipeline.everything()


# --- the switches --------------------------------------------------------------------------------


def test_extra_patterns_apply_to_keys_values_and_free_text(pipeline):
    pipeline.configure(capture_args=True, scrub_patterns={"account": r"acct-\d{4}", "pin": r"(?<![a-z])pin(?![a-z])"})
    instrument(Client)
    client = Client()
    client.call({"pin": 1234, "ref": "acct-7777", "region": "eu"})
    with pytest.raises(ValueError):
        client.fail("account acct-8888 locked")
    pipeline.flush()
    (call,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    assert call["props"] == {"payload": {"pin": "[REDACTED:pin]", "ref": "[REDACTED:account]", "region": "eu"}}
    (fail,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.fail"]
    assert fail["error"]["message"] == "account [REDACTED:account] locked"
    assert "acct-8888" not in pipeline.everything()


def test_extra_patterns_from_the_environment_and_a_bad_one_is_matched_literally(monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    settings = PrivacySettings.resolve({}, {"SDK_TELEMETRY_SCRUB_PATTERNS": r"acct-\d+,bad(regex"})
    assert settings.patterns == ((r"acct-\d+", r"acct-\d+"), ("bad(regex", r"bad\(regex"))
    assert "not a regular expression" in caplog.text
    assert settings.scrubber.text("x acct-12 bad(regex y", ()) == "x [REDACTED:acct-\\d+] [REDACTED:bad(regex] y"


def test_a_bad_pattern_argument_is_a_clear_error():
    with pytest.raises(ValueError, match=r"scrub_patterns: '\(\[' is not a regular expression"):
        configure_telemetry(exporter="none", scrub_patterns=["(["])


def test_safe_keys_are_never_scrubbed(pipeline):
    pipeline.configure(capture_args=True, scrub_safe_keys=["max_tokens", "auth.*"])
    instrument(Client)
    Client().call({"max_tokens": 100, "auth": {"method": "oauth"}, "token": "t-1"})
    pipeline.flush()
    (call,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    assert call["props"]["payload"]["max_tokens"] == 100
    assert call["props"]["payload"]["token"] == "[REDACTED:token]"


def test_the_callback_may_keep_replace_or_leave_the_redaction(pipeline):
    seen: list[ScrubMatch] = []

    def callback(match: ScrubMatch) -> Any:
        seen.append(match)
        if match.path[-1] == "max_tokens":
            return match.value  # keep
        if match.rule == "password":
            return "<hidden>"  # replace
        return None  # the default redaction

    pipeline.configure(capture_args=True, scrub_callback=callback)
    instrument(Client)
    Client().call({"max_tokens": 100, "password": "pw-cb", "token": "tok-cb"})
    pipeline.flush()
    (call,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    assert call["props"]["payload"] == {"max_tokens": 100, "password": "<hidden>", "token": "[REDACTED:token]"}
    assert ("payload", "password") in [match.path for match in seen]


def test_a_failing_callback_fails_closed(pipeline):
    def callback(match: ScrubMatch) -> Any:
        raise RuntimeError("callback bug")

    pipeline.configure(capture_args=True, scrub_callback=callback)
    instrument(Client)
    Client().call({"password": "pw-fail"})
    pipeline.flush()
    (call,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    assert call["props"]["payload"] == {"password": "[REDACTED:password]"}


def test_excluded_fields_are_left_out_by_dotted_path(pipeline):
    pipeline.configure(capture_args=True, excluded_fields=["payload.metadata.password", "exception.stacktrace"])
    instrument(Client)
    client = Client()
    client.call({"metadata": {"password": "pw-x", "region": "eu"}})
    with pytest.raises(ValueError):
        client.fail("boom")
    pipeline.flush()
    (call,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    assert call["props"] == {"payload": {"metadata": {"region": "eu"}}}
    (fail,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.fail"]
    assert "stack" not in fail["error"]
    assert fail["error"]["message"] == "boom"


def test_allow_list_mode_drops_every_attribute_not_named(pipeline):
    pipeline.configure(capture_args=True, allowed_attributes=["region", "exception.type"])
    instrument(Client)
    client = Client()
    client.annotate({"region": "eu", "db.system": "sqlite", "user.email": "a@b.c"})
    with pytest.raises(ValueError):
        client.fail("message not allowed")
    pipeline.flush()
    (annotated,) = rows_named(pipeline, "Client.annotate")
    assert span_attributes(annotated) == {"region": "eu"}
    (failed,) = rows_named(pipeline, "Client.fail")
    attributes = span_attributes(failed)
    assert set(attributes) == {attr.ERROR_TYPE, attr.ERROR_ID}
    assert failed["StatusMessage"] == ""
    (event,) = json.loads(failed["Events"])
    assert event["Attributes"] == {"exception.type": "ValueError"}
    assert "message not allowed" not in pipeline.everything()


def test_an_empty_allow_list_fails_closed(pipeline):
    pipeline.configure(capture_args=True, allowed_attributes=[])
    instrument(Client)
    Client().call({"anything": "x-1"})
    pipeline.flush()
    (row,) = rows_named(pipeline, "Client.call")
    assert span_attributes(row) == {}
    assert "x-1" not in pipeline.everything()


def test_scrubbing_off_sends_values_as_they_are(pipeline):
    pipeline.configure(capture_args=True, scrubbing=False)
    instrument(Client)
    client = Client()
    client.call({"password": "pw-off"})
    with pytest.raises(ValueError):
        client.fail("token=tok-off")
    pipeline.flush()
    everything = pipeline.everything()
    assert "pw-off" in everything
    assert "tok-off" in everything


def test_long_strings_and_deep_structures_are_truncated_with_a_marker(pipeline):
    pipeline.configure(capture_args=True, max_string_length=64)
    instrument(Client)
    client = Client()
    client.call({"text": "y" * 500, "deep": {"a": {"b": {"c": {"d": 1}}}}, "many": list(range(80))})
    client.annotate({"long": "z" * 500})
    pipeline.flush()
    (call,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    props = call["props"]["payload"]
    assert props["text"] == "y" * 64 + scrubber_module.TRUNCATED
    assert props["deep"] == {"a": {"b": scrubber_module.TRUNCATED}}
    assert len(props["many"]) == 51
    assert props["many"][-1] == f"{scrubber_module.TRUNCATED} 30 more"
    (annotated,) = rows_named(pipeline, "Client.annotate")
    assert span_attributes(annotated)["long"] == "z" * 64 + scrubber_module.TRUNCATED


def test_minimal_mode_sends_only_name_duration_outcome_and_error_type(pipeline):
    pipeline.configure(capture_args=True, minimal_data=True, service_name="acme-sdk")
    instrument(Client)
    client = Client()
    client.call({"region": "eu"})
    client.annotate({"region": "eu"})
    with pytest.raises(ValueError):
        client.fail("some message")
    with trace.get_tracer("someone.else").start_as_current_span("outside"):
        pass
    pipeline.flush()
    rows = {row["SpanName"]: row for row in pipeline.rows()}
    assert set(rows) == {"Client.call", "Client.annotate", "Client.fail"}
    assert span_attributes(rows["Client.call"]) == {}
    assert json.loads(rows["Client.call"]["ResourceAttributes"]) == {"service.name": "acme-sdk"}
    failed = rows["Client.fail"]
    assert set(span_attributes(failed)) == {attr.ERROR_TYPE, attr.ERROR_ID}
    assert failed["StatusCode"] == "Error"
    assert failed["StatusMessage"] == ""
    assert json.loads(failed["Events"]) == []
    (error,) = [p for p in pipeline.payloads() if "error" in p]
    assert error["error"]["name"] == "ValueError"
    assert "message" not in error["error"] and "stack" not in error["error"]
    assert "durationMs" in error
    everything = pipeline.everything()
    assert "some message" not in everything
    assert "region" not in everything


def test_scrub_counts_are_readable(pipeline):
    before = prepare.stats()
    pipeline.configure(capture_args=True)
    instrument(Client)
    Client().call({"password": "a", "token": "b"})
    pipeline.flush()
    after = prepare.stats()
    assert after["scrubbed"] - before["scrubbed"] == 2
    assert after["scrubbed_by_rule"]["password"] - before["scrubbed_by_rule"].get("password", 0) == 1


# --- settings -----------------------------------------------------------------------------------


def test_settings_from_the_environment():
    settings = PrivacySettings.resolve(
        {},
        {
            "SDK_TELEMETRY_SCRUBBING": "false",
            "SDK_TELEMETRY_SCRUB_SAFE_KEYS": "max_tokens, model",
            "SDK_TELEMETRY_EXCLUDED_FIELDS": "metadata.password",
            "SDK_TELEMETRY_ALLOWED_ATTRIBUTES": "region,http.*",
            "SDK_TELEMETRY_MINIMAL_DATA": "1",
            "SDK_TELEMETRY_MAX_STRING_LENGTH": "256",
            "SDK_TELEMETRY_CONSENT_REQUIRED": "true",
            "SDK_TELEMETRY_SAMPLE_RATE": "0.25",
            "SDK_TELEMETRY_SAMPLE_RATES": "Tools.list=0.1,Files.*=0.5",
        },
    )
    assert settings.scrubbing is False
    assert settings.safe_keys == (attr.SESSION_ID, "max_tokens", "model")
    assert settings.excluded_fields == ("metadata.password",)
    assert settings.allowed_attributes == ("region", "http.*")
    assert settings.minimal is True
    assert settings.max_string_length == 256
    assert settings.consent_required is True
    assert settings.sampling.rate == 0.25
    assert settings.sampling.rates == (("Tools.list", 0.1), ("Files.*", 0.5))


def test_arguments_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_MINIMAL_DATA", "true")
    monkeypatch.setenv("SDK_TELEMETRY_SAMPLE_RATE", "0.5")
    telemetry = configure_telemetry(exporter="none", minimal_data=False, sample_rate=1.0)
    assert telemetry.settings.privacy.minimal is False
    assert telemetry.settings.privacy.sampling.rate == 1.0


def test_defaults_are_safe():
    settings = PrivacySettings.resolve({}, {})
    assert settings.scrubbing is True
    assert settings.safe_keys == (attr.SESSION_ID,)
    assert settings.allowed_attributes is None
    assert settings.minimal is False
    assert settings.consent_required is False
    assert settings.sampling.rate == 1.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_string_length": 3}, "max_string_length must be an integer of at least 16"),
        ({"scrub_callback": "nope"}, "scrub_callback must be callable"),
    ],
)
def test_bad_arguments_are_clear_errors(arguments, message):
    with pytest.raises((TypeError, ValueError), match=message):
        configure_telemetry(exporter="none", **arguments)


def test_a_bad_environment_value_is_logged_and_the_default_used(caplog):
    caplog.set_level(logging.WARNING)
    settings = PrivacySettings.resolve({}, {"SDK_TELEMETRY_MAX_STRING_LENGTH": "lots"})
    assert settings.max_string_length == scrubber_module.MAX_STRING
    assert "SDK_TELEMETRY_MAX_STRING_LENGTH" in caplog.text


def test_the_active_scrubber_follows_the_configured_settings():
    configure_telemetry(exporter="none", scrub_patterns={"pin": "pin"}, excluded_fields=["drop.me"])
    assert state.scrubber().structure({"pin": 1, "drop": {"me": 2, "keep": 3}}, (), 0) == {
        "pin": "[REDACTED:pin]",
        "drop": {"keep": 3},
    }
    assert state.scrubber().text("pin=1234 password=x", ()) == "pin=[REDACTED:pin] password=[REDACTED:password]"


def test_prepare_never_raises_and_drops_what_it_cannot_make_safe():
    before = prepare.stats()["prepare_failed"]
    assert prepare.prepare(object(), Settings()) is None  # type: ignore[arg-type]
    assert prepare.stats()["prepare_failed"] == before + 1


def test_integers_beyond_64_bits_do_not_lose_the_call(pipeline):
    pipeline.configure(capture_args=True)
    instrument(Client)
    Client().call({"big": 2**70, "small": -3})
    pipeline.flush()
    (call,) = [p for p in pipeline.payloads() if p["functionName"] == "Client.call"]
    assert call["props"] == {"payload": {"big": str(2**70), "small": -3}}


def test_map_and_bytes_attribute_values_are_scrubbed(pipeline):
    pipeline.configure()
    instrument(Client)
    Client().annotate(
        {
            "request": {"headers": {"Authorization": "Bearer map-secret"}, "region": "eu"},
            "raw": b"password=bytes-secret",
            "list": ["token=list-secret", "fine"],
        }
    )
    pipeline.flush()
    everything = pipeline.everything()
    for secret in ("map-secret", "bytes-secret", "list-secret"):
        assert secret not in everything
    (row,) = rows_named(pipeline, "Client.annotate")
    attributes = span_attributes(row)
    assert attributes["request"] == {"headers": {"Authorization": "[REDACTED:auth]"}, "region": "eu"}
    assert attributes["list"] == ["[REDACTED:token]", "fine"]
