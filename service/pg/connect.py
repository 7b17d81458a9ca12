"""Connections to PostGIS that fail fast and say where they tried.

psycopg 3 rather than psycopg2: its binary COPY (``write_row`` with typed
dumpers in C) feeds WKB straight to PostGIS's binary input, which the benchmark
showed is the cheapest path (see README, Benchmark).
"""

from __future__ import annotations

import psycopg

from service.errors import ConfigError, ServiceUnavailable
from service.identity import worker_id
from service.settings import Settings
from service.urls import mask

CONNECT_TIMEOUT_S = 5


def connect(settings: Settings, *, autocommit: bool = False,
            application_name: str | None = None) -> psycopg.Connection:
    """A new connection; an unreachable server raises :class:`ServiceUnavailable`.

    Its ``application_name`` is ``geoload:<host>:<pid>`` unless given, so that
    ``pg_stat_activity`` tells which worker holds which lock.
    """
    try:
        return psycopg.connect(settings.database_url, autocommit=autocommit,
                               connect_timeout=CONNECT_TIMEOUT_S,
                               application_name=application_name or f"geoload:{worker_id()}")
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable("PostGIS", mask(settings.database_url),
                                 _first_line(str(exc))) from exc
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"DATABASE_URL={mask(settings.database_url)!r} is not a connection "
                          f"string PostgreSQL understands ({_first_line(str(exc))})",
                          hint="write it like postgresql://user:password@host:5432/geoload"
                          ) from exc


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "connection failed"
