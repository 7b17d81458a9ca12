"""Every setting geoload reads, in one place.

Settings come from the environment so that the same code runs under honcho,
docker compose and the tests. No other module reads ``os.environ``; they take a
:class:`Settings` (usually :func:`get`). The README lists the same table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "geoload")


@dataclass(frozen=True)
class Setting:
    """One documented environment variable."""

    env: str
    default: str
    help: str


#: The documented settings: the README table and compose's .env.example are checked against it.
SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/geoload",
            "PostGIS database the data and geoload's bookkeeping go to."),
    Setting("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F",
            "RabbitMQ that carries the messages."),
    Setting("REDIS_URL", "redis://127.0.0.1:6379/0",
            "Redis for message results, live progress and worker heartbeats."),
    Setting("GEOLOAD_CACHE_DIR", "$XDG_CACHE_HOME/geoload (~/.cache/geoload)",
            "Per-host download and extraction cache. Never shared between hosts."),
    Setting("GEOLOAD_MIRROR", "(unset)",
            "Replaces scheme and host (plus an optional path prefix) of every upstream URL."),
    Setting("GEOLOAD_TIMEZONE_RELEASE", "2026c",
            "timezone-boundary-builder release tag to load."),
    Setting("GEOLOAD_QUEUE", "geoload", "RabbitMQ queue the actors consume."),
    Setting("GEOLOAD_CHUNK_FEATURES", "20000", "Most features in one chunk message."),
    Setting("GEOLOAD_CHUNK_BYTES", "16000000",
            "Target geometry bytes in one chunk message (splits huge layers by weight)."),
    Setting("GEOLOAD_MAX_DOWNLOAD_BYTES", "8000000000", "Refuse downloads larger than this."),
    Setting("GEOLOAD_MAX_EXTRACT_BYTES", "40000000000",
            "Refuse archives whose members unpack to more than this (zip bombs)."),
    Setting("GEOLOAD_MAX_COMPRESSION_RATIO", "200",
            "Refuse archive members compressed more than this (zip bombs)."),
    Setting("GEOLOAD_CONNECT_TIMEOUT", "10", "Seconds to connect to an upstream server."),
    Setting("GEOLOAD_READ_TIMEOUT", "60", "Seconds an upstream server may stay silent."),
    Setting("GEOLOAD_RESULT_TTL", "86400", "Seconds message results are kept in Redis."),
    Setting("GEOLOAD_MAX_RETRIES", "8", "Retries of a message that failed for a transient reason."),
    Setting("GEOLOAD_REFRESH_CRON", "17 3 * * *",
            "When the scheduler checks upstream for new versions (scheduler's local time)."),
    Setting("GEOLOAD_WORKER_PROCESSES", "2",
            "Worker processes per worker group (Procfile, compose, .ci/demo)."),
    Setting("GEOLOAD_WORKER_THREADS", "2", "Threads per worker process."),
    Setting("GEOLOAD_WORKER_METRICS", "1",
            "1: workers export Dramatiq's Prometheus metrics on dramatiq_prom_port (9191)."),
    Setting("GEOLOAD_DASHBOARD_HOST", "127.0.0.1", "Address the dashboard binds to."),
    Setting("GEOLOAD_DASHBOARD_PORT", "8181", "Port the dashboard binds to."),
    Setting("GEOLOAD_DASHBOARD_TOKEN", "(unset)",
            "Bearer token / basic-auth password; required when bound beyond loopback."),
    Setting("GEOLOAD_RABBITMQ_API", "http://guest:guest@127.0.0.1:15672",
            "RabbitMQ management HTTP API (queue counts on the dashboard)."),
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
    queue: str
    chunk_features: int
    chunk_bytes: int
    max_download_bytes: int
    max_extract_bytes: int
    max_compression_ratio: float
    connect_timeout: float
    read_timeout: float
    result_ttl: int
    max_retries: int
    refresh_cron: str
    worker_metrics: bool
    dashboard_host: str
    dashboard_port: int
    dashboard_token: str | None
    rabbitmq_api: str
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


def _defaults() -> dict[str, str]:
    values = {s.env: s.default for s in SETTINGS}
    values["GEOLOAD_CACHE_DIR"] = _default_cache_dir()
    values["GEOLOAD_MIRROR"] = ""
    values["GEOLOAD_DASHBOARD_TOKEN"] = ""
    return values


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default: the process environment)."""
    env = dict(os.environ if environ is None else environ)
    raw = {**_defaults(), **{k: v for k, v in env.items() if k in _defaults() and v != ""}}
    try:
        return Settings(
            database_url=raw["DATABASE_URL"],
            broker_url=raw["BROKER_URL"],
            redis_url=raw["REDIS_URL"],
            cache_dir=Path(raw["GEOLOAD_CACHE_DIR"]).expanduser(),
            mirror=raw["GEOLOAD_MIRROR"] or None,
            timezone_release=raw["GEOLOAD_TIMEZONE_RELEASE"],
            queue=raw["GEOLOAD_QUEUE"],
            chunk_features=int(raw["GEOLOAD_CHUNK_FEATURES"]),
            chunk_bytes=int(raw["GEOLOAD_CHUNK_BYTES"]),
            max_download_bytes=int(raw["GEOLOAD_MAX_DOWNLOAD_BYTES"]),
            max_extract_bytes=int(raw["GEOLOAD_MAX_EXTRACT_BYTES"]),
            max_compression_ratio=float(raw["GEOLOAD_MAX_COMPRESSION_RATIO"]),
            connect_timeout=float(raw["GEOLOAD_CONNECT_TIMEOUT"]),
            read_timeout=float(raw["GEOLOAD_READ_TIMEOUT"]),
            result_ttl=int(raw["GEOLOAD_RESULT_TTL"]),
            max_retries=int(raw["GEOLOAD_MAX_RETRIES"]),
            refresh_cron=raw["GEOLOAD_REFRESH_CRON"],
            worker_metrics=raw["GEOLOAD_WORKER_METRICS"].strip().lower() in ("1", "true", "yes"),
            dashboard_host=raw["GEOLOAD_DASHBOARD_HOST"],
            dashboard_port=int(raw["GEOLOAD_DASHBOARD_PORT"]),
            dashboard_token=raw["GEOLOAD_DASHBOARD_TOKEN"] or None,
            rabbitmq_api=raw["GEOLOAD_RABBITMQ_API"],
            extra=env,
        )
    except ValueError as exc:
        from service.errors import ConfigError

        raise ConfigError(f"a setting has a value of the wrong type: {exc}",
                          hint="check the numeric GEOLOAD_* variables (see README, Settings)") from exc


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

