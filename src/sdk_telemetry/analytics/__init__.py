"""Analytics over the store: funnels, journeys, retention, feature adoption, performance over time, exports.

from sdk_telemetry.analytics import TimeRange, funnel, open_source

with open_source() as source:  # the configured store, or open_source("path/to/telemetry.sqlite3")
    result = funnel(source, ["Client.login", "Tools.list", "Tools.execute"], window_seconds=600)
    print(result.as_dict())
"""

from sdk_telemetry.analytics._range import AnalyticsError, TimeRange, parse_duration, parse_time
from sdk_telemetry.analytics._source import Source, open_source
from sdk_telemetry.analytics.adoption import Adoption, adoption
from sdk_telemetry.analytics.export import export
from sdk_telemetry.analytics.funnels import Funnel, funnel
from sdk_telemetry.analytics.journeys import Journeys, journeys
from sdk_telemetry.analytics.performance import Performance, functions, performance, top_errors
from sdk_telemetry.analytics.retention import Retention, retention

__all__ = [
    "Adoption",
    "AnalyticsError",
    "Funnel",
    "Journeys",
    "Performance",
    "Retention",
    "Source",
    "TimeRange",
    "adoption",
    "export",
    "functions",
    "funnel",
    "journeys",
    "open_source",
    "parse_duration",
    "parse_time",
    "performance",
    "retention",
    "top_errors",
]
