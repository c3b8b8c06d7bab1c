"""The pipeline fixture shared by the privacy tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporters.tests.helpers.loopback import LoopbackServer
from tests.helpers.privacy import Pipeline


@pytest.fixture
def pipeline(server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """configure_telemetry with three exporters against the `server` fixture and a store file of its own."""
    return Pipeline(server, tmp_path / "privacy.sqlite3", monkeypatch)
