"""Analysis columns on `otel_traces`: whether a span is a call, and each call's environment, session,
user, error type, weight, and its own and its parent's span keys, as `MATERIALIZED` columns
computed from the attribute maps and ids as rows are inserted (and once, by a mutation, for the
rows already there), so that funnels, journeys, retention, adoption and error groups over months
of calls read narrow columns instead of whole maps and strings.

They live and go with their rows (retention, deletes and updates keep them true), `SELECT *` leaves
them out and the Collector's inserts never name them, so nothing it writes or reads changes. A
table without them is read from the maps, with the same answers (`FROM_MAPS`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sdk_telemetry.store.clickhouse import Runner
from sdk_telemetry.store.clickhouse.expressions import (
    CALLS,
    ENVIRONMENT,
    ERROR_KIND,
    PARENT_KEY,
    SPAN_KEY,
    WEIGHT,
    has_user,
    session,
    user,
)


@dataclass(frozen=True)
class Columns:
    """SQL for a call's figures that the analyses group and filter by."""

    call: str
    environment: str
    session: str
    user: str
    has_user: str
    error_kind: str
    weight: str
    span_key: str
    parent_key: str


#: Computed from the attribute maps at every read.
FROM_MAPS = Columns(CALLS, ENVIRONMENT, session(), user(), has_user(), ERROR_KIND, WEIGHT, SPAN_KEY, PARENT_KEY)
#: The materialized columns.
MATERIALIZED = Columns(
    "SdkCall = 1",
    "SdkEnvironment",
    "SdkSession",
    "SdkUser",
    "SdkHasUser = 1",
    "SdkErrorType",
    "SdkWeight",
    "SdkSpanKey",
    "SdkParentKey",
)
#: Each column's type and expression, in the order of `Columns`' fields.
DEFINITIONS: dict[str, tuple[str, str]] = {
    "SdkCall": ("UInt8", CALLS),
    "SdkEnvironment": ("LowCardinality(String)", ENVIRONMENT),
    "SdkSession": ("String", session()),
    "SdkUser": ("String", user()),
    "SdkHasUser": ("UInt8", has_user()),
    "SdkErrorType": ("LowCardinality(String)", ERROR_KIND),
    "SdkWeight": ("Float64", WEIGHT),
    "SdkSpanKey": ("UInt64", SPAN_KEY),
    "SdkParentKey": ("UInt64", PARENT_KEY),
}


def available(run: Runner) -> Columns:
    """Each figure from its analysis column where `otel_traces` has it, else from the maps (a table
    made by an earlier release has only some of them)."""
    rows = run(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'otel_traces' "
        f"AND name IN ({', '.join(repr(name) for name in DEFINITIONS)})",
        {},
    )
    have = {str(row[0]) for row in rows}
    return Columns(
        **{
            field.name: getattr(MATERIALIZED if name in have else FROM_MAPS, field.name)
            for field, name in zip(fields(Columns), DEFINITIONS, strict=True)
        }
    )


def present(run: Runner) -> bool:
    """Whether `otel_traces` has every analysis column."""
    return available(run) == MATERIALIZED


def add_columns(run: Runner) -> list[str]:
    """Add the analysis columns `otel_traces` lacks and compute them for the rows already stored
    (waiting for the mutation); returns the columns added."""
    rows = run("SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'otel_traces'", {})
    existing = {str(row[0]) for row in rows}
    if not existing:
        raise ValueError("analysis columns: the database has no otel_traces table")
    added = [name for name in DEFINITIONS if name not in existing]
    if not added:
        return []
    run(
        "ALTER TABLE otel_traces "
        + ", ".join(f"ADD COLUMN IF NOT EXISTS {name} {DEFINITIONS[name][0]} MATERIALIZED {DEFINITIONS[name][1]}"
                    for name in added),
        {},
    )  # fmt: skip
    run(
        "ALTER TABLE otel_traces " + ", ".join(f"MATERIALIZE COLUMN {name}" for name in added)
        + " SETTINGS mutations_sync = 2",
        {},
    )  # fmt: skip
    return added
