"""``geoload.runs``: a run and its loads are recorded together, before any message is sent."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

import psycopg

from service.catalog.options import LoadOptions
from service.ledger import loads
from service.ledger.records import RETRYABLE


def new_run_id() -> str:
    """Sortable and short: ``20261129T172233-3f9a1c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + secrets.token_hex(3)


def create(conn: psycopg.Connection, datasets: list[str], releases: dict[str, str | None],
           *, origin: str = "cli", retry_of: str | None = None, strict: bool = False,
           options: dict[str, LoadOptions] | None = None) -> str:
    """A run and one queued load per dataset, in one transaction.

    ``strict`` and each load's ``options`` are fixed here, with the load, so that every
    worker that touches the load loads the same thing, whatever its own environment says.
    """
    run_id = new_run_id()
    with conn.transaction():
        conn.execute("INSERT INTO geoload.runs (run_id, datasets, origin, retry_of) "
                     "VALUES (%s, %s, %s, %s)", (run_id, datasets, origin, retry_of))
        for name in datasets:
            opts = (options or {}).get(name)
            release = opts.release if opts else releases.get(name)
            conn.execute("INSERT INTO geoload.loads (run_id, dataset, release, strict, options, "
                         "target_schema) VALUES (%s, %s, %s, %s, %s, %s)",
                         (run_id, name, release, strict,
                          json.dumps(opts.to_json()) if opts else None,
                          opts.schema if opts else None))
    return run_id


def fail_unsent(conn: psycopg.Connection, run_id: str, error: str, error_type: str) -> None:
    """The run's messages could not be sent: each of its loads fails, saying so."""
    with conn.transaction():
        rows = conn.execute("SELECT load_id FROM geoload.loads WHERE run_id = %s "
                            "ORDER BY load_id FOR UPDATE", (run_id,)).fetchall()
        for (load_id,) in rows:
            loads.fail(conn, int(load_id), error, error_type, "enqueue")


def exists(conn: psycopg.Connection, run_id: str) -> bool:
    return conn.execute("SELECT 1 FROM geoload.runs WHERE run_id = %s",
                        (run_id,)).fetchone() is not None


def origin(conn: psycopg.Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT origin FROM geoload.runs WHERE run_id = %s", (run_id,)).fetchone()
    return str(row[0]) if row else None


def retryable(conn: psycopg.Connection, run_id: str) -> list[str] | None:
    """The run's datasets that failed or were cancelled, in its order; None: no such run."""
    if not exists(conn, run_id):
        return None
    rows = conn.execute("SELECT dataset FROM geoload.loads WHERE run_id = %s "
                        "AND status = ANY(%s) ORDER BY load_id",
                        (run_id, list(RETRYABLE))).fetchall()
    return [str(r[0]) for r in rows]


def strict(conn: psycopg.Connection, run_id: str) -> bool:
    """Whether the run was started strict (``--strict``): fixed on each of its loads."""
    row = conn.execute("SELECT coalesce(bool_or(strict), false) FROM geoload.loads "
                       "WHERE run_id = %s", (run_id,)).fetchone()
    return bool(row and row[0])


def recent(conn: psycopg.Connection, limit: int = 50) -> list[str]:
    """The ids of the latest runs, newest first."""
    rows = conn.execute("SELECT run_id FROM geoload.runs ORDER BY created_at DESC LIMIT %s",
                        (limit,)).fetchall()
    return [str(r[0]) for r in rows]


def forget_unstarted(conn: psycopg.Connection, origin: str) -> None:
    """Delete the runs of ``origin`` whose loads never started (their messages were never
    consumed): the benchmark's timed enqueues, whose queue it then deletes."""
    conn.execute("DELETE FROM geoload.runs WHERE origin = %s AND run_id IN (SELECT run_id "
                 "FROM geoload.loads WHERE status = 'queued')", (origin,))
