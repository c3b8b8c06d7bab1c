"""Every setting of sdk-telemetry, read in this one place: arguments first, then the environment,
then defaults. Nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sdk_telemetry_exporters.config import ExporterSettings, parse_bool, parse_list, parse_seconds, read_bool
from sdk_telemetry_exporters.notices import warn
from typing_extensions import TypedDict, Unpack

from sdk_telemetry.config.end_user import checked_user_id
from sdk_telemetry.config.session import SessionArguments, SessionSettings, exporter_names
from sdk_telemetry.privacy import PrivacyArguments, PrivacySettings

# Opt-out variables: any truthy value turns telemetry off for the whole process.
OPT_OUT_VARIABLES = ("SDK_TELEMETRY_DISABLED", "TELEMETRY_DISABLED", "DO_NOT_TRACK", "OTEL_SDK_DISABLED")
#: Environments in which telemetry is off unless enabled explicitly.
QUIET_ENVIRONMENTS = frozenset({"test", "ci"})

DEFAULT_EXPORTER = "local"
DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_INTERVAL = 2.0
DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_EXIT_TIMEOUT = 2.0
#: What an instrumented call made inside another instrumented call of the same SDK (top-level package)
#: records: "collapse" (no span of its own: the outer call's span is the one span of the user's call)
#: or "children" (a child span of the outer call's).
NESTED_CALLS = "SDK_TELEMETRY_NESTED_CALLS"
NESTED_CALLS_MODES = ("collapse", "children")
DEFAULT_NESTED_CALLS = "collapse"
USER_ID = "SDK_TELEMETRY_USER_ID"

#: The variables that name the span exporters, in order of precedence (the first one set is read).
EXPORTER_VARIABLES = ("OTEL_TRACES_EXPORTER", "SDK_TELEMETRY_EXPORTER")


def default_store_path(env: Mapping[str, str]) -> Path:
    """`$XDG_DATA_HOME/sdk-telemetry/telemetry.sqlite3` (`~/.local/share` when unset)."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sdk-telemetry" / "telemetry.sqlite3"


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one telemetry setup."""

    enabled: bool = True
    disabled_reason: str | None = None
    service_name: str | None = None
    service_version: str | None = None
    environment: str | None = None
    traces_exporters: tuple[str, ...] = (DEFAULT_EXPORTER,)
    #: Where `traces_exporters` came from: a variable's name, or None (the argument or the default).
    exporters_variable: str | None = None
    metrics_exporters: tuple[str, ...] = ()
    http: ExporterSettings = field(default_factory=ExporterSettings)
    project_id: str | None = None
    provider: str | None = None
    #: The end user of this process (the resource attribute `enduser.id`), or None.
    user_id: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_interval: float = DEFAULT_BATCH_INTERVAL
    queue_size: int = DEFAULT_QUEUE_SIZE
    exit_timeout: float = DEFAULT_EXIT_TIMEOUT
    capture_args: bool = False
    nested_calls: str = DEFAULT_NESTED_CALLS
    store_path: Path = field(default_factory=lambda: default_store_path(os.environ))
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    instrument_targets: tuple[str, ...] = ()


def opt_out_reason(env: Mapping[str, str] | None = None) -> str | None:
    """The name of the opt-out variable that is set to a truthy value, if any."""
    environ = os.environ if env is None else env
    for name in OPT_OUT_VARIABLES:
        if parse_bool(environ.get(name)):
            return name
    return None


class SettingsArguments(PrivacyArguments, SessionArguments, TypedDict, total=False):
    """The keyword arguments of `configure_telemetry()`; each overrides its environment variable.

    The privacy and session arguments are declared beside their settings
    (`sdk_telemetry.privacy.settings`, `sdk_telemetry.config.session`).
    """

    enabled: bool | None
    enable_variable: str | None
    service_name: str | None
    service_version: str | None
    environment: str | None
    exporter: str | Sequence[str] | None
    metrics_exporter: str | Sequence[str] | None
    endpoint: str | None
    api_key: str | None
    headers: Mapping[str, str] | None
    timeout: float | None
    project_id: str | None
    provider: str | None
    user_id: str | None
    batch_size: int | None
    batch_interval: float | None
    queue_size: int | None
    exit_timeout: float | None
    capture_args: bool | None
    nested_calls: str | None
    store_path: str | os.PathLike[str] | None
    instrument: str | Sequence[str] | None


def resolve_settings(env: Mapping[str, str] | None = None, **arguments: Unpack[SettingsArguments]) -> Settings:
    """Settings from the arguments (None means "not given"), then `env`, then defaults.

    Raises `TypeError` naming any argument that is not a setting.
    """
    unknown = sorted(set(arguments) - set(SettingsArguments.__annotations__))
    if unknown:
        raise TypeError(f"unknown telemetry setting(s): {', '.join(unknown)}")
    environ = os.environ if env is None else env
    given: dict[str, Any] = {key: value for key, value in arguments.items() if value is not None}

    def text(argument: str, variable: str) -> str | None:
        return given.get(argument) or environ.get(variable) or None

    def number(argument: str, variable: str, default: float) -> float:
        if argument in given:
            return float(given[argument])
        return parse_seconds(environ.get(variable), default, variable)

    base = ExporterSettings.from_env(environ)
    http = replace(
        base,
        endpoint=given.get("endpoint", base.endpoint),
        api_key=given.get("api_key", base.api_key),
        headers={**base.headers, **dict(given.get("headers", {}))},
        timeout=float(given.get("timeout", base.timeout)),
    )
    environment = text("environment", "SDK_TELEMETRY_ENVIRONMENT")
    store = text("store_path", "SDK_TELEMETRY_STORE")
    exporters_variable = None if "exporter" in given else next((v for v in EXPORTER_VARIABLES if environ.get(v)), None)
    exporters = given.get("exporter") if exporters_variable is None else environ[exporters_variable]
    if "store_path" in given and http.spool_dir is not None and not environ.get("SDK_TELEMETRY_SPOOL_DIR"):
        http = replace(http, spool_dir=Path(given["store_path"]).expanduser().parent / "spool")  # beside the store
    return Settings(
        **_enablement(given.get("enabled"), given.get("enable_variable"), environment, environ),
        service_name=text("service_name", "OTEL_SERVICE_NAME"),
        service_version=text("service_version", "SDK_TELEMETRY_SERVICE_VERSION"),
        environment=environment,
        traces_exporters=exporter_names(exporters if exporters is not None else DEFAULT_EXPORTER),
        exporters_variable=exporters_variable,
        metrics_exporters=exporter_names(given.get("metrics_exporter", environ.get("OTEL_METRICS_EXPORTER"))),
        http=http,
        project_id=text("project_id", "SDK_TELEMETRY_PROJECT_ID"),
        provider=text("provider", "SDK_TELEMETRY_PROVIDER"),
        user_id=_user_id(given.get("user_id"), environ.get(USER_ID)),
        batch_size=int(number("batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
        # The argument is in seconds, the variable (as upstream) in milliseconds.
        batch_interval=number("batch_interval", "", 0.0)
        if "batch_interval" in given
        else number("", "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_BATCH_INTERVAL * 1000) / 1000,
        queue_size=int(number("queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE_SIZE)),
        exit_timeout=number("exit_timeout", "SDK_TELEMETRY_EXIT_TIMEOUT", DEFAULT_EXIT_TIMEOUT),
        capture_args=bool(
            given["capture_args"]
            if "capture_args" in given
            else read_bool(environ, "SDK_TELEMETRY_CAPTURE_ARGS", "call arguments are not captured")
        ),
        nested_calls=_nested_calls(given.get("nested_calls"), environ.get(NESTED_CALLS)),
        store_path=Path(store) if store else default_store_path(environ),
        instrument_targets=parse_list(given.get("instrument", environ.get("SDK_TELEMETRY_INSTRUMENT"))),
        privacy=PrivacySettings.resolve(given, environ),
        session=SessionSettings.resolve(given, environ),
    )


def _user_id(argument: str | None, variable: str | None) -> str | None:
    """`user_id`: the argument (`ValueError` when it is not a valid id), else the variable (an invalid
    one is warned about and left out)."""
    if argument is not None:
        return checked_user_id(argument)
    if not variable:
        return None
    try:
        return checked_user_id(variable.strip(), USER_ID)
    except ValueError as error:
        warn(f"env:{USER_ID}={variable}", "%s; no user id is set", error)
        return None


def _nested_calls(argument: str | None, variable: str | None) -> str:
    """`nested_calls`: the argument (`ValueError` when it is not a mode), else the variable (an invalid
    value is warned about once and the default taken: the environment belongs to the end user)."""
    if argument is not None:
        if argument not in NESTED_CALLS_MODES:
            raise ValueError(f"nested_calls must be one of {', '.join(NESTED_CALLS_MODES)}, not {argument!r}")
        return argument
    value = (variable or "").strip().lower()
    if not value:
        return DEFAULT_NESTED_CALLS
    if value not in NESTED_CALLS_MODES:
        warn(
            f"env:{NESTED_CALLS}={value}",
            "%s=%r is not one of %s; using %r",
            NESTED_CALLS,
            variable,
            ", ".join(NESTED_CALLS_MODES),
            DEFAULT_NESTED_CALLS,
        )
        return DEFAULT_NESTED_CALLS
    return value


def _enablement(
    enabled: bool | None, enable_variable: str | None, environment: str | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """`enabled` and `disabled_reason`: opt-out variables first, then `enabled`, then the environment.

    `enable_variable` is an SDK's own switch with the Tinker meaning: unset is on, `1/true/yes/on`
    is on, anything else is off.
    """
    explicit = (
        enabled
        if enabled is not None
        else read_bool(environ, "SDK_TELEMETRY_ENABLED", "ignored: on, unless an opt-out or a test/ci environment")
    )
    reason = opt_out_reason(environ)
    own_switch = environ.get(enable_variable) if enable_variable else None
    if reason is None and own_switch is not None and own_switch.strip().lower() not in ("1", "true", "yes", "on"):
        reason = f"{enable_variable}={own_switch}"
    if reason is None and explicit is False:
        reason = "enabled=False"
    if reason is None and explicit is not True and environment and environment.lower() in QUIET_ENVIRONMENTS:
        reason = f"environment={environment.lower()}"
    return {"enabled": reason is None, "disabled_reason": reason}
