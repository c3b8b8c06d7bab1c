"""Monitors: threshold rules from a YAML or TOML file, evaluated continuously, alerts to a webhook and the log.

from sdk_telemetry.monitors import Evaluator, MonitorRunner, load_config

config = load_config("monitors.yaml")  # MonitorConfigError names the bad rule
runner = MonitorRunner(Evaluator(config, store_path))
runner.start()
runner.snapshot()  # the state of every alert
"""

from sdk_telemetry.monitors._settings import MonitorArguments, MonitorSettings
from sdk_telemetry.monitors.evaluator import (
    FIRING,
    OK,
    PENDING,
    RESOLVED,
    AlertState,
    Evaluator,
    MonitorRunner,
    Notification,
)
from sdk_telemetry.monitors.rules import MonitorConfig, MonitorConfigError, Rule, load_config, parse_config

__all__ = [
    "FIRING",
    "OK",
    "PENDING",
    "RESOLVED",
    "AlertState",
    "Evaluator",
    "MonitorArguments",
    "MonitorConfig",
    "MonitorConfigError",
    "MonitorRunner",
    "MonitorSettings",
    "Notification",
    "Rule",
    "load_config",
    "parse_config",
]
