"""Every setting geoload reads, in one place.

Settings come from the environment so that the same code runs under honcho,
docker compose and the tests. No other module reads ``os.environ``; they take a
:class:`Settings` (usually :func:`get`). The README lists the same table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "geoload")


@dataclass(frozen=True)
class Setting:
    """One documented environment variable, and the :class:`Settings` field it fills.

    ``field`` is None for variables only the process launchers read (Procfile, compose).
    """

    env: str
    field: str | None
    default: str
    help: str


#: The documented settings: the README table and compose's .env.example are checked against it.
SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "database_url", "postgresql://postgres@127.0.0.1:5432/geoload",
            "PostGIS database the data and geoload's bookkeeping go to."),
    Setting("BROKER_URL", "broker_url", "amqp://guest:guest@127.0.0.1:5672/%2F",
            "RabbitMQ that carries the messages."),
    Setting("REDIS_URL", "redis_url", "redis://127.0.0.1:6379/0",
            "Redis for message results, live progress and worker heartbeats."),
    Setting("GEOLOAD_CACHE_DIR", "cache_dir", "$XDG_CACHE_HOME/geoload (~/.cache/geoload)",
            "Per-host download and extraction cache. Never shared between hosts."),
    Setting("GEOLOAD_MIRROR", "mirror", "(unset)",
            "Replaces scheme and host (plus an optional path prefix) of every upstream URL."),
    Setting("GEOLOAD_TIMEZONE_RELEASE", "timezone_release", "2026c",
            "Pins the timezone-boundary-builder release tag to load. Unset: the newest, asked "
            "of GitHub once a day; this default if GitHub can't be reached (with a warning)."),
    Setting("GEOLOAD_GITHUB_API", "github_api", "https://api.github.com",
            "GitHub's API, asked for the newest timezone-boundary-builder release."),
    Setting("GEOLOAD_QUEUE", "queue", "geoload", "RabbitMQ queue the actors consume."),
    Setting("GEOLOAD_KEEP_VERSIONS", "keep_versions", "0",
            "Earlier versions of each dataset kept under schema geoload_archive (read by the "
            "workers that publish), for enqueue --rollback; 0 drops them."),
    Setting("GEOLOAD_CHUNK_FEATURES", "chunk_features", "20000",
            "Most features in one chunk message."),
    Setting("GEOLOAD_CHUNK_BYTES", "chunk_bytes", "8000000",
            "Target geometry bytes in one chunk message (splits huge layers by weight)."),
    Setting("GEOLOAD_INFLIGHT_BYTES", "inflight_bytes", "80000000",
            "Chunk weight one worker process decodes at once (bounds its memory): a chunk "
            "weighs its geometry bytes plus twice its largest feature's."),
    Setting("GEOLOAD_MAX_DOWNLOAD_BYTES", "max_download_bytes", "8000000000",
            "Refuse downloads larger than this."),
    Setting("GEOLOAD_MAX_EXTRACT_BYTES", "max_extract_bytes", "40000000000",
            "Refuse archives whose members unpack to more than this (zip bombs)."),
    Setting("GEOLOAD_MAX_COMPRESSION_RATIO", "max_compression_ratio", "200",
            "Refuse archive members compressed more than this (zip bombs)."),
    Setting("GEOLOAD_CONNECT_TIMEOUT", "connect_timeout", "10",
            "Seconds to connect to an upstream server."),
    Setting("GEOLOAD_READ_TIMEOUT", "read_timeout", "60",
            ("Seconds an upstream server may stay silent; a download must also bring 64 KiB per "
             "this many seconds.")),
    Setting("GEOLOAD_RESULT_TTL", "result_ttl", "86400",
            "Seconds message results are kept in Redis."),
    Setting("GEOLOAD_REDIS_TIMEOUT", "redis_timeout", "5",
            "Seconds to connect to Redis and to wait for each answer: a Redis that stops "
            "answering fails the call (retried once) instead of blocking a worker thread."),
    Setting("GEOLOAD_MAX_RETRIES", "max_retries", "8",
            "Retries of a message that failed for a transient reason."),
    Setting("GEOLOAD_REFRESH_CRON", "refresh_cron", "17 3 * * *",
            "When the scheduler checks upstream for new versions (scheduler's local time)."),
    Setting("GEOLOAD_STRICT", "strict", "0",
            "1: loads the scheduler starts fail on any data warning (a field missing, added or "
            "retyped; a geometry kept as NULL) instead of loading with the warning; as "
            "enqueue --strict."),
    Setting("GEOLOAD_WORKER_PROCESSES", None, "2",
            "Worker processes per worker group (Procfile, compose, .ci/demo)."),
    Setting("GEOLOAD_WORKER_THREADS", None, "2", "Threads per worker process."),
    Setting("GEOLOAD_WORKER_METRICS", "worker_metrics", "1",
            "1: workers export Dramatiq's Prometheus metrics on dramatiq_prom_port (9191)."),
    Setting("GEOLOAD_DASHBOARD_HOST", "dashboard_host", "127.0.0.1",
            "Address the dashboard binds to."),
    Setting("GEOLOAD_DASHBOARD_PORT", "dashboard_port", "8181", "Port the dashboard binds to."),
    Setting("GEOLOAD_DASHBOARD_TOKEN", "dashboard_token", "(unset)",
            "Bearer token / basic-auth password; required when bound beyond loopback."),
    Setting("GEOLOAD_RABBITMQ_API", "rabbitmq_api", "http://guest:guest@127.0.0.1:15672",
            "RabbitMQ management HTTP API (queue counts on the dashboard and for the sweep)."),
)


@dataclass(frozen=True)
class Settings:
    """Parsed settings; build with :func:`from_env`, or directly in tests."""

    database_url: str
    broker_url: str
    redis_url: str
    cache_dir: Path
    mirror: str | None
    timezone_release: str
    github_api: str
    queue: str
    keep_versions: int
    chunk_features: int
    chunk_bytes: int
    inflight_bytes: int
    max_download_bytes: int
    max_extract_bytes: int
    max_compression_ratio: float
    connect_timeout: float
    read_timeout: float
    result_ttl: int
    redis_timeout: float
    max_retries: int
    refresh_cron: str
    strict: bool
    worker_metrics: bool
    dashboard_host: str
    dashboard_port: int
    dashboard_token: str | None
    rabbitmq_api: str
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


#: Variables whose documented default is a description, not a value.
_UNSET = {"GEOLOAD_MIRROR", "GEOLOAD_DASHBOARD_TOKEN"}
_TRUE = ("1", "true", "yes", "on")


def _convert(kind: str, text: str) -> Any:
    """Turn an environment string into the field's type (named by its annotation)."""
    if kind == "bool":
        return text.strip().lower() in _TRUE
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "Path":
        return Path(text).expanduser()
    return text or None if "None" in kind else text


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default: the process environment)."""
    env = dict(os.environ if environ is None else environ)
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.field is None:
            continue
        default = "" if setting.env in _UNSET else setting.default
        if setting.env == "GEOLOAD_CACHE_DIR":
            default = _default_cache_dir()
        text = env.get(setting.env) or default
        try:
            values[setting.field] = _convert(kinds[setting.field], text)
        except ValueError as exc:
            from service.errors import ConfigError

            raise ConfigError(f"{setting.env}={text!r} has the wrong type: {exc}",
                              hint=f"{setting.env}: {setting.help} (see README, Settings)"
                              ) from exc
    return Settings(**values, extra=env)


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process (workers, CLIs)."""
    env = dict(settings.extra)
    for setting in SETTINGS:
        if setting.field is None:
            continue
        value = getattr(settings, setting.field)
        env[setting.env] = ("1" if value else "0") if isinstance(value, bool) else (
            "" if value is None else str(value))
    return env


_current: Settings | None = None


def get() -> Settings:
    """The process-wide settings, read once from the environment."""
    global _current
    if _current is None:
        _current = from_env()
    return _current


def override(settings: Settings | None) -> None:
    """Replace the process-wide settings (tests and embedding); ``None`` re-reads the env."""
    global _current
    _current = settings


def setting_names() -> list[str]:
    """Names of every documented environment variable."""
    return [s.env for s in SETTINGS]

