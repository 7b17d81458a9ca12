"""What the dashboard reads of the durable history of loads, layers and chunks.

Only what the rest of the ledger doesn't already answer (a run's status is
:mod:`service.ledger.status`): layer timings for throughput, what is published now,
the failures with the chunk, attempts and worker behind them, and sums for metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg.rows import class_row

T = TypeVar("T")


def _records(conn: psycopg.Connection, record: type[T], query: LiteralString,
             params: tuple[Any, ...] = ()) -> list[T]:
    """Each row as a ``record``, its fields named by the query's columns."""
    with conn.cursor(row_factory=class_row(record)) as cur:
        return cur.execute(query, params).fetchall()


@dataclass(frozen=True)
class LayerTiming:
    """When a layer's first chunk started and its last finished; its attempts and failures."""

    dataset: str
    layer: str
    first_started: datetime | None
    last_finished: datetime | None
    attempts: int
    failed: int


def layer_timings(conn: psycopg.Connection, run_id: str) -> dict[tuple[str, str], LayerTiming]:
    """Per (dataset, layer) of a run, its :class:`LayerTiming`."""
    rows = _records(conn, LayerTiming, """
        SELECT d.dataset, c.layer, min(c.started_at) AS first_started,
               max(c.finished_at) FILTER (WHERE c.status = 'loaded') AS last_finished,
               sum(c.attempts) AS attempts, count(*) FILTER (WHERE c.status = 'failed') AS failed
        FROM geoload.chunks c JOIN geoload.loads d USING (load_id)
        WHERE d.run_id = %s GROUP BY d.dataset, c.layer""", (run_id,))
    return {(r.dataset, r.layer): r for r in rows}


def retries_of(conn: psycopg.Connection, run_id: str) -> list[str]:
    """Runs started to retry ``run_id``, oldest first."""
    rows = conn.execute("SELECT run_id FROM geoload.runs WHERE retry_of = %s ORDER BY created_at",
                        (run_id,)).fetchall()
    return [str(r[0]) for r in rows]


@dataclass(frozen=True)
class LiveLoad:
    """The load whose tables are live: its version, and per layer what it loaded."""

    load_id: int
    run_id: str
    dataset: str
    release: str | None
    source_url: str | None
    etag: str | None
    last_modified: str | None
    bytes: int | None
    sha256: str | None
    started_at: datetime | None
    fetched_at: datetime | None
    finished_at: datetime | None
    layers: dict[str, dict[str, Any]] | None
    warnings: list[dict[str, Any]]
    #: The options fixed at enqueue (see :mod:`service.catalog.options`), None before them.
    options: dict[str, Any] | None = None
    #: The schema it published into; '' for the catalog's own.
    target_schema: str = ""


_LIVE = """
    SELECT DISTINCT ON (dataset, coalesce(target_schema, '')) load_id, run_id, dataset, release,
           source_url, etag, last_modified, bytes, sha256, started_at, fetched_at, finished_at,
           layers, coalesce(warnings, '[]'::jsonb) AS warnings, options,
           coalesce(target_schema, '') AS target_schema
    FROM geoload.loads WHERE status = 'published' AND {where}
    ORDER BY dataset, coalesce(target_schema, ''), finished_at DESC NULLS LAST, load_id DESC"""


def published(conn: psycopg.Connection) -> dict[str, LiveLoad]:
    """Per dataset, the load that is live now in the catalog's schemas: the last published."""
    rows = _records(conn, LiveLoad, _LIVE.format(where="target_schema IS NULL"))
    return {r.dataset: r for r in rows}


def published_elsewhere(conn: psycopg.Connection) -> list[LiveLoad]:
    """The loads live in schemas users chose (``enqueue --schema``), one per (dataset, schema)."""
    return _records(conn, LiveLoad, _LIVE.format(where="target_schema IS NOT NULL"))


@dataclass(frozen=True)
class LatestLoad:
    """A dataset's most recent load, of any status."""

    load_id: int
    run_id: str
    dataset: str
    status: str
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


def latest(conn: psycopg.Connection) -> dict[str, LatestLoad]:
    """Per dataset, its most recent load of any status (a newer one may be running or failed)."""
    rows = _records(conn, LatestLoad, """
        SELECT DISTINCT ON (dataset) load_id, run_id, dataset, status, error, started_at,
               finished_at
        FROM geoload.loads ORDER BY dataset, load_id DESC""")
    return {r.dataset: r for r in rows}


def table_bytes(conn: psycopg.Connection, tables: list[str]) -> dict[str, int | None]:
    """Current size on disk (with indexes and TOAST) of each ``schema.table``; None if absent."""
    if not tables:
        return {}
    rows = conn.execute(
        "SELECT t, pg_total_relation_size(to_regclass(t)) FROM unnest(%s::text[]) AS t",
        (tables,)).fetchall()
    return {str(t): (int(size) if size is not None else None) for t, size in rows}


@dataclass(frozen=True)
class FailedLoad:
    """A failed load, with its failed chunk (layer, attempts, worker) if a chunk failed, and
    the run that retried it."""

    load_id: int
    run_id: str
    dataset: str
    error: str | None
    error_type: str | None
    error_step: str | None
    failed_at: datetime | None
    layer: str | None
    chunk_no: int | None
    attempts: int | None
    worker: str | None
    retried_by: str | None


def failures(conn: psycopg.Connection, limit: int = 100) -> list[FailedLoad]:
    """Failed loads, newest first."""
    return _records(conn, FailedLoad, """
        SELECT l.load_id, l.run_id, l.dataset, l.error, l.error_type, l.error_step,
               l.finished_at AS failed_at, c.layer, c.chunk_no,
               coalesce(c.attempts, l.error_attempts) AS attempts,
               coalesce(c.worker, l.error_worker) AS worker,
               (SELECT r.run_id FROM geoload.runs r WHERE r.retry_of = l.run_id
                AND l.dataset = ANY(r.datasets) ORDER BY r.created_at DESC LIMIT 1) AS retried_by
        FROM geoload.loads l
        LEFT JOIN LATERAL (
            SELECT layer, chunk_no, attempts, worker FROM geoload.chunks
            WHERE load_id = l.load_id AND status = 'failed'
            ORDER BY finished_at DESC NULLS LAST LIMIT 1) c ON true
        WHERE l.status = 'failed'
        ORDER BY l.finished_at DESC NULLS LAST, l.load_id DESC LIMIT %s""", (limit,))


@dataclass(frozen=True)
class FeatureCount:
    dataset: str
    layer: str
    loaded: int | None


@dataclass(frozen=True)
class LoadCount:
    dataset: str
    status: str
    n: int
    bytes: int


@dataclass(frozen=True)
class FailureCount:
    dataset: str
    step: str
    n: int


@dataclass(frozen=True)
class RetryCount:
    dataset: str
    n: int | None


@dataclass(frozen=True)
class LastLoad:
    """A dataset's last published load: when it finished (epoch seconds), how long it took,
    how many features it loaded."""

    dataset: str
    finished: float | None
    seconds: float | None
    features: int | None


@dataclass(frozen=True)
class Totals:
    """Sums for metrics, over every run."""

    features: list[FeatureCount]
    loads: list[LoadCount]
    failures: list[FailureCount]
    retries: list[RetryCount]
    last: list[LastLoad]


def totals(conn: psycopg.Connection) -> Totals:
    """Sums for metrics: features per layer, bytes, failures, retries, last load speed."""
    return Totals(
        features=_records(conn, FeatureCount, """
            SELECT d.dataset, l.layer, sum(l.loaded)::bigint AS loaded
            FROM geoload.load_layers l JOIN geoload.loads d USING (load_id)
            GROUP BY d.dataset, l.layer"""),
        loads=_records(conn, LoadCount, """
            SELECT dataset, status, count(*) AS n, coalesce(sum(bytes), 0)::bigint AS bytes
            FROM geoload.loads GROUP BY dataset, status"""),
        failures=_records(conn, FailureCount, """
            SELECT dataset, coalesce(error_step, 'unknown') AS step, count(*) AS n
            FROM geoload.loads WHERE status = 'failed' GROUP BY 1, 2"""),
        retries=_records(conn, RetryCount, """
            SELECT d.dataset, sum(greatest(c.attempts - 1, 0))::bigint AS n
            FROM geoload.chunks c JOIN geoload.loads d USING (load_id) GROUP BY d.dataset"""),
        last=_records(conn, LastLoad, """
            SELECT DISTINCT ON (d.dataset) d.dataset,
                   extract(epoch FROM d.finished_at)::float8 AS finished,
                   extract(epoch FROM d.finished_at - d.started_at)::float8 AS seconds,
                   (SELECT sum(loaded) FROM geoload.load_layers l
                    WHERE l.load_id = d.load_id)::bigint AS features
            FROM geoload.loads d WHERE d.status = 'published'
            ORDER BY d.dataset, d.finished_at DESC NULLS LAST"""),
    )
