"""The whole `/openapi.json` document, driven by schemathesis over real HTTP on 127.0.0.1 (the
receiver with the dashboard mounted, as `serve` runs it): a bounded number of generated requests
per operation, never a 5xx, and every answer conforms to the document (status, type, schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from sdk_telemetry.dashboard import mount
from sdk_telemetry.receiver import ReceiverSettings, create_app
from tests.helpers.receiver import KEY, Running, invocation, serve

#: Generated requests per operation (the suite's bound).
EXAMPLES = 20
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    path: Path = tmp_path_factory.mktemp("contract") / "s.sqlite3"

    def app(receiver_settings: ReceiverSettings) -> Any:
        application = create_app(receiver_settings)
        mount(application, path, api_keys=(KEY,))
        return application

    # Keyless Composio ingest on, so that the keyless path (and its 429) is exercised too.
    with serve(ReceiverSettings(store_path=path, api_keys=(KEY,), composio_keyless=True), app) as running:
        assert running.post("/v1/metrics/invocations", [invocation(i) for i in range(5)]).status_code == 200
        yield running


def test_every_operation_conforms_and_never_answers_5xx(live: Running) -> None:
    document = schemathesis.openapi.from_url(live.url + "/openapi.json")
    operations = [result.ok() for result in document.get_all_operations()]
    assert len(operations) >= 21  # every endpoint the receiver serves, ingest, OTLP, queries, analytics
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: Any) -> None:
            case.call_and_validate(base_url=live.url, headers={"X-API-Key": KEY}, checks=CHECKS)

        conforms()
