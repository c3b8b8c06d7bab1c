"""Analytics over the store: funnels, journeys, retention, feature adoption, performance over time,
exports, and drill-down (a function's calls, a trace, an error group's occurrences, sessions, a tail).

Time ranges are `TimeRange`s in nanoseconds since the epoch (`NS` to the second); the HTTP API over
these analyses is the dashboard's (`sdk_telemetry.dashboard`).

from sdk_telemetry.analytics import TimeRange, funnel, open_source

with open_source() as source:  # the configured store, or open_source("path/to/telemetry.sqlite3")
    result = funnel(source, ["Client.login", "Tools.list", "Tools.execute"], window_seconds=600)
    print(result.as_dict())
"""

from sdk_telemetry.analytics._adoption import Adoption, adoption
from sdk_telemetry.analytics._drilldown import (
    NotFound,
    error_occurrences,
    recent_calls,
    session_timeline,
    sessions,
    tail,
    trace,
)
from sdk_telemetry.analytics._export import export, json_ready
from sdk_telemetry.analytics._funnels import Funnel, funnel
from sdk_telemetry.analytics._journeys import Journeys, common_paths, journeys
from sdk_telemetry.analytics._performance import Performance, functions, performance, summary, top_errors
from sdk_telemetry.analytics._range import NS, AnalyticsError, TimeRange, parse_duration, parse_time
from sdk_telemetry.analytics._retention import Retention, retention
from sdk_telemetry.analytics._source import Location, Source, did_you_mean, open_source

__all__ = [
    "NS",
    "Adoption",
    "AnalyticsError",
    "Funnel",
    "Journeys",
    "Location",
    "NotFound",
    "Performance",
    "Retention",
    "Source",
    "TimeRange",
    "adoption",
    "common_paths",
    "did_you_mean",
    "error_occurrences",
    "export",
    "functions",
    "funnel",
    "journeys",
    "json_ready",
    "open_source",
    "parse_duration",
    "parse_time",
    "performance",
    "recent_calls",
    "retention",
    "session_timeline",
    "sessions",
    "summary",
    "tail",
    "top_errors",
    "trace",
]
