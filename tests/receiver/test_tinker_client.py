"""The real `tinker` SDK's own telemetry (its `Telemetry` class, request model and HTTP client)
against the receiver over real HTTP on 127.0.0.1: session batches land as events, each once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk_telemetry.receiver import ReceiverSettings
from tests.helpers.receiver import Running, serve

TINKER_KEY = "tml-receiver-test-key"


class Provider:
    """What tinker's `Telemetry` needs of its client: an event loop in a thread and an `AsyncTinker`."""

    def __init__(self, url: str) -> None:
        from tinker._client import AsyncTinker

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = AsyncTinker(base_url=url, api_key=TINKER_KEY)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop

    def run_coroutine_threadsafe(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    @contextlib.contextmanager
    def aclient(self, client_pool_type: Any) -> Iterator[Any]:
        yield self.client

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Running]:
    settings = ReceiverSettings(store_path=tmp_path / "tinker.sqlite3", api_keys=(TINKER_KEY,))
    with serve(settings) as running:
        yield running


def test_the_real_tinker_client_lands_its_session(receiver: Running) -> None:
    from tinker.lib.telemetry import Telemetry

    provider = Provider(receiver.url)
    try:
        telemetry = Telemetry(provider, session_id="tinker-session-1")  # type: ignore[arg-type]
        assert telemetry.log("model.loaded", {"model": "llama", "big": 2**70})
        try:
            raise ValueError("")
        except ValueError as exc:
            assert telemetry.log_exception_sync(exc)
        asyncio.run_coroutine_threadsafe(telemetry.close(), provider.loop).result(30)
    finally:
        provider.close()
    rows = receiver.rows("SELECT EventName, SeverityText, SessionId FROM otel_logs ORDER BY Timestamp, EventName")
    names = [row[0] for row in rows]
    assert "SESSION_START" in names and "model.loaded" in names
    assert {row[2] for row in rows} == {"tinker-session-1"}
    assert len(rows) == 3, rows
