"""The HTTP transport honours the proxy variables as they are when an exporter is made."""

from __future__ import annotations

import pytest
from helpers.loopback import LoopbackServer
from sdk_telemetry_exporters import HttpTransport


def test_http_proxy_carries_the_request_to_a_host_only_the_proxy_knows(
    monkeypatch: pytest.MonkeyPatch, server: LoopbackServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = HttpTransport({"Content-Type": "application/json"}, timeout=5)
    result = transport.post("http://telemetry.example.invalid/metrics/invocations", b"[]")
    assert result.ok and result.status == 200
    [received] = server.received
    assert received.method == "POST"
    assert received.path == "http://telemetry.example.invalid/metrics/invocations"  # the proxy form of the target
    assert received.body == b"[]" and received.headers["idempotency-key"]


def test_no_proxy_sends_straight_to_the_host(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    transport = HttpTransport(timeout=5)
    result = transport.post(server.url + "/errors", b"{}")
    assert result.ok
    assert [request.path for request in server.received] == ["/errors"]
