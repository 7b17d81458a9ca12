"""Every setting geoload reads, in one place.

Settings come from the environment so that the same code runs under honcho,
docker compose and the tests; a ``.env`` file in the working directory fills what the
environment leaves unset (as honcho and compose read it), so that ``geoload`` run by hand
sees the same values. No other module reads ``os.environ``; they take a
:class:`Settings` (usually :func:`get`). The README lists the same table, and
``geoload settings`` prints each value and where it came from (:func:`effective`).
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
    Setting("GEOLOAD_LOOKUP", "lookup_tables", "1",
            "1: each load also cuts its dataset's lookup table (geoload lookup, /api/lookup, "
            "geoload.lookup()), swapped in with its tables; 0: no lookup table (a published "
            "load drops the old one, so lookups never answer from an older version)."),
    Setting("GEOLOAD_REFRESH_DATASETS", "refresh_datasets", "published",
            "Datasets the scheduled refresh checks, comma-separated; `published`: those "
            "published at least once; empty: no refresh."),
    Setting("GEOLOAD_WORKER_PROCESSES", "worker_processes", "2",
            "Worker processes per worker group (Procfile, compose, .ci/demo, geoload worker)."),
    Setting("GEOLOAD_WORKER_THREADS", "worker_threads", "2",
            "Threads per worker process (and geoload load --local's default)."),
    Setting("GEOLOAD_WORKER_METRICS", "worker_metrics", "1",
            "1: workers export Dramatiq's Prometheus metrics on dramatiq_prom_port (9191)."),
    Setting("GEOLOAD_DASHBOARD_HOST", "dashboard_host", "127.0.0.1",
            "Address the dashboard binds to."),
    Setting("GEOLOAD_DASHBOARD_PORT", "dashboard_port", "8181", "Port the dashboard binds to."),
    Setting("GEOLOAD_DASHBOARD_TOKEN", "dashboard_token", "(unset)",
            "Bearer token / basic-auth password; required when bound beyond loopback."),
    Setting("GEOLOAD_RABBITMQ_API", "rabbitmq_api", "http://guest:guest@127.0.0.1:15672",
            "RabbitMQ management HTTP API (queue counts on the dashboard and for the sweep)."),
    Setting("GEOLOAD_POSTGIS_PORT", None, "5432",
            "compose: the port on the host's 127.0.0.1 where PostGIS is published (QGIS, psql)."),
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
    #: Dataset names, ``published`` for those published at least once; empty: refresh off.
    refresh_datasets: tuple[str, ...] = ("published",)
    worker_processes: int = 2
    worker_threads: int = 2
    lookup_tables: bool = True
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


#: Variables whose documented default is a description, not a value.
_UNSET = {"GEOLOAD_MIRROR", "GEOLOAD_DASHBOARD_TOKEN"}
#: Variables where an empty value means something (not "the default").
_EMPTY_MEANS = {"GEOLOAD_REFRESH_DATASETS"}
#: The file that fills what the environment leaves unset, in the working directory.
DOTENV = ".env"
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
    if kind.startswith("tuple"):
        return tuple(name for name in text.replace(",", " ").split())
    return text or None if "None" in kind else text


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (comments, blank lines and ``export`` allowed,
    values optionally quoted), as honcho and compose read it; {} if there is none."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip()] = value
    return found


def process_environ() -> dict[str, str]:
    """The process environment over the working directory's ``.env``."""
    return {**read_dotenv(Path.cwd() / DOTENV), **os.environ}


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default: the process environment over ``.env``)."""
    env = process_environ() if environ is None else dict(environ)
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.field is None:
            continue
        default = "" if setting.env in _UNSET else setting.default
        if setting.env == "GEOLOAD_CACHE_DIR":
            default = _default_cache_dir()
        text = env.get(setting.env) or default
        if setting.env in _EMPTY_MEANS and setting.env in env:
            text = env[setting.env]
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
        if isinstance(value, tuple):
            env[setting.env] = ",".join(value)
        else:
            env[setting.env] = ("1" if value else "0") if isinstance(value, bool) else (
                "" if value is None else str(value))
    return env


@dataclass(frozen=True)
class Effective:
    """A setting's value as this process sees it, and where it came from."""

    env: str
    value: str
    source: str  # "environment", ".env" or "default"
    help: str


#: Settings shown masked: URLs lose their password, secrets all of it.
_SECRETS = {"GEOLOAD_DASHBOARD_TOKEN"}


def effective(environ: Mapping[str, str] | None = None,
              dotenv: Mapping[str, str] | None = None) -> list[Effective]:
    """Every documented setting: its value (passwords masked) and its source.

    ``environ`` and ``dotenv`` default to the process environment and the working
    directory's ``.env``; the environment wins, as in :func:`from_env`.
    """
    from service.urls import mask

    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(Path.cwd() / DOTENV) if dotenv is None else dotenv
    shown = []
    for setting in SETTINGS:
        empty_counts = setting.env in _EMPTY_MEANS
        if setting.env in environ and (environ[setting.env] or empty_counts):
            value, source = environ[setting.env], "environment"
        elif setting.env in dotenv and (dotenv[setting.env] or empty_counts):
            value, source = dotenv[setting.env], DOTENV
        else:
            value, source = setting.default, "default"
        if source != "default" and setting.env in _SECRETS:
            value = "***" if value else ""
        elif "://" in value or "password" in value.lower():
            value = mask(value)
        shown.append(Effective(setting.env, value, source, setting.help))
    return shown


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

