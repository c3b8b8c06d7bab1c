"""Every setting of sdk-telemetry, read in this one place: arguments first, then the environment,
then defaults. Nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sdk_telemetry_exporters._env import ExporterSettings, parse_bool, parse_seconds

# Opt-out variables: any truthy value turns telemetry off for the whole process.
OPT_OUT_VARIABLES = ("SDK_TELEMETRY_DISABLED", "TELEMETRY_DISABLED", "DO_NOT_TRACK", "OTEL_SDK_DISABLED")
#: Environments in which telemetry is off unless enabled explicitly.
QUIET_ENVIRONMENTS = frozenset({"test", "ci"})

DEFAULT_EXPORTER = "local"
DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_INTERVAL = 2.0
DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_EXIT_TIMEOUT = 2.0


def default_store_path(env: Mapping[str, str]) -> Path:
    """`$XDG_DATA_HOME/sdk-telemetry/telemetry.sqlite3` (`~/.local/share` when unset)."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sdk-telemetry" / "telemetry.sqlite3"


def _int(value: str | None, default: int) -> int:
    try:
        number = int(value) if value else default
    except ValueError:
        return default
    return number if number > 0 else default


def _names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Exporter names from a comma list or a sequence; `none` means no exporter."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    names = tuple(name.strip().lower() for name in items if name.strip())
    return tuple(name for name in names if name != "none")


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one telemetry setup."""

    enabled: bool = True
    disabled_reason: str | None = None
    service_name: str | None = None
    service_version: str | None = None
    environment: str | None = None
    traces_exporters: tuple[str, ...] = (DEFAULT_EXPORTER,)
    metrics_exporters: tuple[str, ...] = ()
    http: ExporterSettings = field(default_factory=ExporterSettings)
    project_id: str | None = None
    provider: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_interval: float = DEFAULT_BATCH_INTERVAL
    queue_size: int = DEFAULT_QUEUE_SIZE
    exit_timeout: float = DEFAULT_EXIT_TIMEOUT
    capture_args: bool = False
    store_path: Path = field(default_factory=lambda: default_store_path(os.environ))
    instrument_targets: tuple[str, ...] = ()


def opt_out_reason(env: Mapping[str, str] | None = None) -> str | None:
    """The name of the opt-out variable that is set to a truthy value, if any."""
    environ = os.environ if env is None else env
    for name in OPT_OUT_VARIABLES:
        if parse_bool(environ.get(name)):
            return name
    return None


def resolve_settings(
    env: Mapping[str, str] | None = None,
    *,
    enabled: bool | None = None,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    exporter: str | Sequence[str] | None = None,
    metrics_exporter: str | Sequence[str] | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    project_id: str | None = None,
    provider: str | None = None,
    batch_size: int | None = None,
    batch_interval: float | None = None,
    queue_size: int | None = None,
    exit_timeout: float | None = None,
    capture_args: bool | None = None,
    store_path: str | os.PathLike[str] | None = None,
    instrument: str | Sequence[str] | None = None,
) -> Settings:
    """Settings from the arguments (None means "not given"), then `env`, then defaults."""
    environ = os.environ if env is None else env
    base = ExporterSettings.from_env(environ)
    http = replace(
        base,
        endpoint=endpoint or base.endpoint,
        api_key=api_key or base.api_key,
        headers={**base.headers, **dict(headers or {})},
        timeout=timeout or base.timeout,
    )
    environment = environment or environ.get("SDK_TELEMETRY_ENVIRONMENT") or None
    explicit = enabled if enabled is not None else parse_bool(environ.get("SDK_TELEMETRY_ENABLED"))
    reason = opt_out_reason(environ)
    if reason is None and explicit is False:
        reason = "enabled=False"
    if reason is None and explicit is not True and environment and environment.lower() in QUIET_ENVIRONMENTS:
        reason = f"environment={environment.lower()}"
    store = store_path or environ.get("SDK_TELEMETRY_STORE")
    return Settings(
        enabled=reason is None,
        disabled_reason=reason,
        service_name=service_name or environ.get("OTEL_SERVICE_NAME") or None,
        service_version=service_version or environ.get("SDK_TELEMETRY_SERVICE_VERSION") or None,
        environment=environment,
        traces_exporters=_names(exporter if exporter is not None else environ.get("OTEL_TRACES_EXPORTER"))
        or ((DEFAULT_EXPORTER,) if exporter is None and "OTEL_TRACES_EXPORTER" not in environ else ()),
        metrics_exporters=_names(
            metrics_exporter if metrics_exporter is not None else environ.get("OTEL_METRICS_EXPORTER")
        ),
        http=http,
        project_id=project_id or environ.get("SDK_TELEMETRY_PROJECT_ID") or None,
        provider=provider or environ.get("SDK_TELEMETRY_PROVIDER") or None,
        batch_size=batch_size or _int(environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), DEFAULT_BATCH_SIZE),
        batch_interval=batch_interval
        or _int(environ.get("OTEL_BSP_SCHEDULE_DELAY"), int(DEFAULT_BATCH_INTERVAL * 1000)) / 1000,
        queue_size=queue_size or _int(environ.get("OTEL_BSP_MAX_QUEUE_SIZE"), DEFAULT_QUEUE_SIZE),
        exit_timeout=exit_timeout
        or parse_seconds(environ.get("SDK_TELEMETRY_EXIT_TIMEOUT"), DEFAULT_EXIT_TIMEOUT, "SDK_TELEMETRY_EXIT_TIMEOUT"),
        capture_args=capture_args
        if capture_args is not None
        else bool(parse_bool(environ.get("SDK_TELEMETRY_CAPTURE_ARGS"))),
        store_path=Path(store) if store else default_store_path(environ),
        instrument_targets=_targets(instrument if instrument is not None else environ.get("SDK_TELEMETRY_INSTRUMENT")),
    )


def _targets(value: str | Sequence[str] | None) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(item.strip() for item in items if item.strip())
