"""Journeys of the real `openai` client's calls against a loopback fake of its API, with the SDK's
inner calls recorded as child spans (`nested_calls="children"`): stored by the `local` exporter,
copied row for row into ClickHouse's engine (chDB, with and without the analysis columns), and
counted the same by both engines, the client's inner `post` and `request` never steps of their own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import openai
import pytest
from chdb import session as chdb_session

import sdk_telemetry
from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.analytics import Source, journeys
from sdk_telemetry.store import ClickHouseReader, ClickHouseStore, SQLiteReader, open_read_only
from tests.helpers.engines import Dataset, load_clickhouse
from tests.helpers.llm_api import MODEL, FakeLLMAPI

MESSAGES = [{"role": "user", "content": "hi"}]


def record_two_users(store: Path) -> None:
    with FakeLLMAPI() as api:
        telemetry = configure_telemetry(
            exporter="local", store_path=str(store), nested_calls="children", http_spans=False
        )
        instrument(openai.resources.chat.completions.Completions)
        instrument(openai._base_client.SyncAPIClient)  # its post/request run inside Completions.create
        client = openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)
        with sdk_telemetry.user("u-chat"):
            for _ in range(2):
                client.chat.completions.create(model=MODEL, messages=MESSAGES)
            client.models.list()
        with sdk_telemetry.user("u-list"):
            client.models.list()
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert telemetry.flush(timeout=5)


@pytest.mark.parametrize("analysis_columns", [False, True], ids=["maps", "analysis columns"])
def test_the_real_clients_nested_calls_give_the_same_journeys_on_both_engines(
    tmp_path: Path, analysis_columns: bool
) -> None:
    store = tmp_path / "openai.sqlite3"
    record_two_users(store)
    connection = sqlite3.connect(store)
    rows = [tuple(row) for row in connection.execute("SELECT * FROM otel_traces ORDER BY Timestamp, SpanId")]
    connection.close()
    names = {row[5] for row in rows if row[3]}  # the children the client's calls made
    assert {"SyncAPIClient.post", "SyncAPIClient.request"} <= names
    answers = []
    session = chdb_session.Session(str(tmp_path / "chdb"))
    try:
        clickhouse = ClickHouseStore.from_chdb(session)
        load_clickhouse(clickhouse, Dataset(spans=rows), analysis_columns=analysis_columns)
        for reader in (SQLiteReader(open_read_only(store), store), ClickHouseReader(clickhouse.run, "chdb")):
            answers.append(journeys(Source(reader), by="user").as_dict())
    finally:
        session.close()
    on_sqlite, on_clickhouse = answers
    assert on_clickhouse == on_sqlite
    assert on_sqlite["sessions"] == 2
    assert sorted((tuple(p["path"]), p["count"]) for p in on_sqlite["paths"]) == [
        (("Completions.create", "SyncAPIClient.get_api_list"), 1),
        (("SyncAPIClient.get_api_list", "Completions.create"), 1),
    ]
