"""The shared transport against a real server: what is retried, what is final, keys, splitting, close()."""

from __future__ import annotations

import email.utils
import threading
import time

import pytest
from helpers.faults import OK, Fault, FaultServer
from sdk_telemetry_exporters import HttpTransport
from sdk_telemetry_exporters._transport import parse_retry_after
from sdk_telemetry_exporters.spool import WireBatch


def transport(**overrides: float) -> HttpTransport:
    options = {"timeout": 1.0, "backoff_base": 0.01, "backoff_cap": 0.05, **overrides}
    return HttpTransport({"Content-Type": "application/json"}, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_refusal_is_final_and_never_retried(status):
    with FaultServer(then=Fault(status)) as server:
        result = transport().post(server.url + "/errors", b"{}")
    assert not result.ok and result.permanent and result.status == status
    assert len(server.received) == 1


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_a_failure_not_a_success_and_is_not_followed(status):
    with FaultServer(then=Fault(status, headers={"Location": "/elsewhere"})) as server:
        result = transport().post(server.url + "/errors", b"{}")
    assert not result.ok and result.status == status
    assert [request.path for request in server.received] == ["/errors"]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_with_the_same_idempotency_key(status):
    with FaultServer([Fault(status), Fault(status)]) as server:
        sender = transport()
        result = sender.post(server.url + "/metrics/invocations", b"[1]")
    assert result.ok and result.attempts == 3
    keys = {request.headers["idempotency-key"] for request in server.received}
    assert len(server.received) == 3 and len(keys) == 1, keys
    assert sender.retries == 2


def test_retry_after_parsing():
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("-3") == 0.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28.0 <= (parse_retry_after(date, now=now) or 0) <= 30.0
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
    for garbage in (None, "", "soon", "nan", "Wed, 99 Foo 2020"):
        assert parse_retry_after(garbage) is None, garbage


def test_413_splits_in_halves_until_each_part_fits():
    def decide(request: object, ids: list[str]) -> Fault:
        return Fault(413) if len(ids) > 2 else OK

    items = tuple({"metadata": {"eventId": f"{n:048x}"}} for n in range(7))
    with FaultServer(decide=decide) as server:
        sender = transport()
        parts = sender.send(server.url + "/metrics/invocations", WireBatch("/metrics/invocations", items))
    assert all(result.ok for _, result in parts)
    assert sorted(len(part.items) for part, _ in parts) == [1, 2, 2, 2]
    assert server.accepted_ids() == {item["metadata"]["eventId"] for item in items}
    assert server.duplicates() == 0


def test_a_single_item_that_is_too_large_is_final():
    with FaultServer(then=Fault(413)) as server:
        [(_, result)] = transport().send(server.url + "/errors", WireBatch("/errors", ({"a": 1},), single=True))
    assert result.permanent and len(server.received) == 1


def test_close_interrupts_a_retry_wait_at_once():
    with FaultServer(then=Fault(503, headers={"Retry-After": "20"})) as server:
        sender = transport(backoff_cap=20.0)
        threading.Timer(0.3, sender.close).start()
        started = time.monotonic()
        result = sender.post(server.url + "/errors", b"{}", deadline=time.monotonic() + 60)
        took = time.monotonic() - started
    assert not result.ok
    assert took < 2.0, f"close() took {took:.2f}s to interrupt a 20 s Retry-After wait"


def test_a_retry_after_longer_than_the_deadline_gives_up_at_once_for_the_spool():
    with FaultServer(then=Fault(429, headers={"Retry-After": "10"})) as server:
        started = time.monotonic()
        result = transport().post(server.url + "/errors", b"{}", deadline=time.monotonic() + 2)
        took = time.monotonic() - started
    assert not result.ok and not result.permanent and result.retry_after == 10.0
    assert took < 2.0 and len(server.received) == 1, f"gave up after {took:.2f}s, not at once"
