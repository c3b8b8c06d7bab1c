"""The analytics tests' simulated week: one store per module, opened as an analytics source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk_telemetry.analytics import open_source
from tests.helpers.week import WEEK_NOW, Made, write_week


@pytest.fixture(scope="module")
def week_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Made]:
    path = tmp_path_factory.mktemp("week") / "week.sqlite3"
    return path, write_week(path, WEEK_NOW)


@pytest.fixture
def source(week_store: tuple[Path, Made]) -> Iterator[Any]:
    with open_source(week_store[0]) as opened:
        yield opened
