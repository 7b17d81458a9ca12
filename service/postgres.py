"""Connections to PostGIS that fail fast and say where they tried, and what a refusal means.

psycopg 3 rather than psycopg2: its binary COPY takes the rows pgpq encodes from
Arrow, so WKB goes straight to PostGIS's binary input, the cheapest path the
benchmark found (see docs/libraries.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.pq import TransactionStatus

from service.errors import BadSource, ConfigError, ServiceUnavailable
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


_kept = threading.local()


@contextmanager
def reused(settings: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection this thread keeps from one message to the next.

    A new connection per message cost 18 ms here: 5 ms to connect, 13 ms for the new
    backend to load PostGIS at its first geometry. The connection is kept only when it
    comes back idle (no transaction open); one that failed, broke or was left inside a
    transaction is closed, and a kept one that no longer answers is replaced.
    """
    conn = _checkout(settings)
    healthy = False
    try:
        yield conn
        healthy = True
    finally:
        if (healthy and not conn.closed
                and conn.info.transaction_status == TransactionStatus.IDLE):
            _kept.conn = (settings.database_url, conn)
        else:
            conn.close()


def _checkout(settings: Settings) -> psycopg.Connection:
    url, conn = getattr(_kept, "conn", None) or (None, None)
    _kept.conn = None
    if conn is not None:
        if url == settings.database_url and _answers(conn):
            return conn
        conn.close()
    return connect(settings, autocommit=True)


def _answers(conn: psycopg.Connection) -> bool:
    if conn.closed or conn.broken:
        return False
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@contextmanager
def local_setting(conn: psycopg.Connection, name: str, value: str) -> Iterator[None]:
    """``name = value`` for the block, inside the current transaction, then as before: a
    ``SET LOCAL`` would last to the transaction's end, past the statements it was for."""
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    conn.execute("SELECT set_config(%s, %s, true)", (name, value))
    try:
        yield
    finally:
        if conn.info.transaction_status != TransactionStatus.INERROR:
            conn.execute("SELECT set_config(%s, %s, true)", (name, row[0] if row else ""))


@contextmanager
def refused_data(dataset: str, what: str) -> Iterator[None]:
    """PostgreSQL refusing a value (duplicate key, bad encoding) is the source's fault: no retry."""
    try:
        yield
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError,
            psycopg.errors.ProgramLimitExceeded) as exc:
        detail = exc.diag.message_primary or str(exc)
        extra = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""
        raise BadSource(f"{what}: PostgreSQL refused the data: {detail}{extra}", dataset=dataset,
                        hint="the source breaks an assumption of the catalog (unique key, "
                             "encoding); fix the catalog or report it upstream") from exc


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "connection failed"
