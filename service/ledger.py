"""Reads and writes of geoload's bookkeeping tables (runs, loads, layers, chunks).

Every state change that must happen exactly once is a conditional UPDATE on a
locked row, inside the same transaction as the work it records.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from service.data_warnings import DroppedFeature
from service.identity import worker_id
from service.load.budget import send_order
from service.load.names import STAGING

if TYPE_CHECKING:
    from service.data_warnings import DataWarning
    from service.fetch import LocalCopy
    from service.load.columns import Column

#: Load statuses after which nothing more happens to the load. A load is superseded when a
#: load of its dataset that learnt its version from upstream later was published first.
TERMINAL = ("published", "failed", "superseded")


def new_run_id() -> str:
    """Sortable and short: ``20261129T172233-3f9a1c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + secrets.token_hex(3)


def create_run(conn: psycopg.Connection, datasets: list[str], releases: dict[str, str | None],
               *, origin: str = "cli", retry_of: str | None = None, strict: bool = False) -> str:
    """A run and one queued load per dataset, in one transaction.

    ``strict`` is fixed here, with the load, so that every worker that touches the load
    treats its data warnings alike, whatever its own environment says.
    """
    run_id = new_run_id()
    with conn.transaction():
        conn.execute("INSERT INTO geoload.runs (run_id, datasets, origin, retry_of) "
                     "VALUES (%s, %s, %s, %s)", (run_id, datasets, origin, retry_of))
        for name in datasets:
            conn.execute("INSERT INTO geoload.loads (run_id, dataset, release, strict) "
                         "VALUES (%s, %s, %s, %s)", (run_id, name, releases.get(name), strict))
    return run_id


@dataclass(frozen=True)
class Load:
    load_id: int
    run_id: str
    dataset: str
    status: str
    sha256: str | None
    layers_total: int | None
    layers_ready: int
    #: Data warnings fail this load instead of being recorded (``enqueue --strict``).
    strict: bool = False

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def get_load(conn: psycopg.Connection, run_id: str, dataset: str, *,
             lock: bool = False) -> Load | None:
    query = ("SELECT load_id, run_id, dataset, status, sha256, layers_total, layers_ready, "
             "strict FROM geoload.loads WHERE run_id = %s AND dataset = %s")
    row = conn.execute(query + (" FOR UPDATE" if lock else ""), (run_id, dataset)).fetchone()
    return Load(*row) if row else None


def set_status(conn: psycopg.Connection, load_id: int, status: str, *,
               unless: tuple[str, ...] = TERMINAL) -> None:
    conn.execute("UPDATE geoload.loads SET status = %s, "
                 "started_at = coalesce(started_at, clock_timestamp()) "
                 "WHERE load_id = %s AND status <> ALL(%s)", (status, load_id, list(unless)))


def fetch_order(conn: psycopg.Connection) -> int:
    """The next place in the order in which loads learn their version from upstream.

    Taken from a database sequence, so that it orders loads on any hosts whatever their
    clocks say; a publish never replaces a load that came later in this order.
    """
    row = conn.execute("SELECT nextval('geoload.fetch_order')").fetchone()
    assert row is not None
    return int(row[0])


def record_fetch(conn: psycopg.Connection, load_id: int, local: "LocalCopy",
                 order: int | None = None) -> None:
    """Pin the version a run loads: every later step reads exactly these bytes.

    ``order`` is the :func:`fetch_order` taken when upstream answered with these bytes;
    without one (upstream answered 304: the cached copy is still current), it is taken now.
    """
    v = local.validators
    conn.execute(
        "UPDATE geoload.loads SET source_url = %s, etag = %s, last_modified = %s, bytes = %s, "
        "sha256 = %s, fetched_at = clock_timestamp(), status = 'fetched', "
        "fetch_order = coalesce(%s, nextval('geoload.fetch_order')) "
        "WHERE load_id = %s AND sha256 IS NULL AND status <> ALL(%s)",
        (local.url, v.etag, v.last_modified, v.size, v.sha256, order, load_id, list(TERMINAL)))


def download_progress(conn: psycopg.Connection, load_id: int, done: int) -> None:
    """A download is moving: the sweep must not take it for a stall, however long it takes."""
    conn.execute("UPDATE geoload.loads SET download_bytes = %s, download_at = clock_timestamp() "
                 "WHERE load_id = %s AND status <> ALL(%s)", (done, load_id, list(TERMINAL)))


@dataclass(frozen=True)
class LayerPlan:
    """A planned layer: where its rows go, how to read them, how many are expected."""

    layer: str
    target_table: str
    staging_table: str
    driver: str
    fid_column: str
    columns: list["Column"]
    source_count: int
    chunks: list[tuple[int, int, int, int]]  # (fid_first, fid_last, features, weight)
    #: Where the layer's schema differs from the catalog's (see :mod:`service.load.columns`).
    warnings: list["DataWarning"] = field(default_factory=list)


def save_plan(conn: psycopg.Connection, load_id: int, plans: list[LayerPlan]) -> None:
    """The plan, its chunks and its schema warnings, recorded with the load."""
    for p in plans:
        conn.execute(
            "INSERT INTO geoload.load_layers (load_id, layer, target_table, staging_table, "
            "driver, fid_column, columns, source_count, chunks_total) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (load_id, p.layer, p.target_table, p.staging_table, p.driver, p.fid_column,
             json.dumps([c.as_json() for c in p.columns]), p.source_count, len(p.chunks)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO geoload.chunks (load_id, layer, chunk_no, fid_first, fid_last, "
                "features, weight) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(load_id, p.layer, n, *chunk) for n, chunk in enumerate(p.chunks)])
    warnings = [w.as_json() for p in plans for w in p.warnings]
    conn.execute("UPDATE geoload.loads SET layers_total = %s, status = 'loading', warnings = %s "
                 "WHERE load_id = %s", (len(plans), json.dumps(warnings), load_id))


def pending_chunks(conn: psycopg.Connection, load_id: int,
                   capacity: int | None = None) -> list[tuple[str, int]]:
    """(layer, chunk_no) not yet loaded, heaviest first; with a worker's budget ``capacity``,
    in the order :func:`service.load.budget.send_order` gives."""
    rows = conn.execute("SELECT layer, chunk_no, weight FROM geoload.chunks WHERE load_id = %s "
                        "AND status <> 'loaded' ORDER BY weight DESC, layer, chunk_no",
                        (load_id,)).fetchall()
    weights = {(str(layer), int(n)): int(weight) for layer, n, weight in rows}
    return list(weights) if capacity is None else send_order(weights, capacity)


def layer_row(conn: psycopg.Connection, load_id: int, layer: str, *,
              lock: bool = False) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        query = "SELECT * FROM geoload.load_layers WHERE load_id = %s AND layer = %s"
        return cur.execute(query + (" FOR UPDATE" if lock else ""), (load_id, layer)).fetchone()


def layer_rows(conn: psycopg.Connection, load_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM geoload.load_layers WHERE load_id = %s ORDER BY layer",
                           (load_id,)).fetchall()


def chunk_row(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int, *,
              lock: bool = False) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        query = ("SELECT * FROM geoload.chunks WHERE load_id = %s AND layer = %s "
                 "AND chunk_no = %s")
        return cur.execute(query + (" FOR UPDATE" if lock else ""),
                           (load_id, layer, chunk_no)).fetchone()


def start_attempt(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int) -> None:
    """Count an attempt in its own transaction, so that it survives a rollback of the load.

    ``error`` is the current attempt's; earlier ones stay in ``errors``."""
    with conn.transaction():
        conn.execute("UPDATE geoload.chunks SET attempts = attempts + 1, worker = %s, "
                     "started_at = clock_timestamp(), error = NULL "
                     "WHERE load_id = %s AND layer = %s "
                     "AND chunk_no = %s AND status <> 'loaded'",
                     (worker_id(), load_id, layer, chunk_no))


@dataclass(frozen=True)
class ChunkCounts:
    loaded: int
    empty: int
    repaired: int
    parts_dropped: int
    stages: dict[str, float] = field(default_factory=dict)
    #: Features kept with geom NULL, and the first of them (fid, key, problem).
    dropped: int = 0
    dropped_features: list[DroppedFeature] = field(default_factory=list)


def complete_chunk(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int,
                   counts: ChunkCounts, seconds: float) -> tuple[int, int]:
    """Mark a chunk loaded and add its counts to the layer; returns (chunks done, total).

    The layer row's lock serializes these updates, so exactly one chunk sees
    "done == total" and triggers the layer's indexing.
    """
    conn.execute("UPDATE geoload.chunks SET status = 'loaded', loaded = %s, empty = %s, "
                 "repaired = %s, parts_dropped = %s, worker = %s, finished_at = clock_timestamp(), "
                 "seconds = %s, dropped = %s, dropped_features = %s "
                 "WHERE load_id = %s AND layer = %s AND chunk_no = %s",
                 (counts.loaded, counts.empty, counts.repaired, counts.parts_dropped,
                  worker_id(), seconds, counts.dropped,
                  json.dumps([asdict(f) for f in counts.dropped_features]),
                  load_id, layer, chunk_no))
    row = conn.execute(
        "UPDATE geoload.load_layers SET chunks_done = chunks_done + 1, loaded = loaded + %s, "
        "empty = empty + %s, repaired = repaired + %s, parts_dropped = parts_dropped + %s, "
        "dropped = dropped + %s "
        "WHERE load_id = %s AND layer = %s RETURNING chunks_done, chunks_total",
        (counts.loaded, counts.empty, counts.repaired, counts.parts_dropped, counts.dropped,
         load_id, layer),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def layer_ready(conn: psycopg.Connection, load_id: int, layer: str, table_bytes: int,
                seconds: float) -> tuple[int, int]:
    """Mark a layer indexed; returns (layers ready, total), serialized by the load row."""
    conn.execute("UPDATE geoload.load_layers SET status = 'ready', table_bytes = %s, "
                 "index_seconds = %s WHERE load_id = %s AND layer = %s",
                 (table_bytes, seconds, load_id, layer))
    row = conn.execute("UPDATE geoload.loads SET layers_ready = layers_ready + 1, "
                       "status = CASE WHEN status = 'loading' THEN 'indexing' ELSE status END "
                       "WHERE load_id = %s RETURNING layers_ready, layers_total",
                       (load_id,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1] or 0)


#: Sets ``error`` and keeps it in the chunk's ``errors``, one entry per attempt: a later
#: word on the same attempt (the failure recorder's, once the message is dead) replaces
#: that entry's text instead of adding one.
_KEEP_ERROR = """error = %(error)s, errors = CASE
    WHEN (errors -> -1 ->> 'attempt')::int = attempts
    THEN (errors - -1) || jsonb_build_array(errors -> -1 || jsonb_build_object(
        'type', %(type)s::text, 'error', %(error)s::text))
    ELSE errors || jsonb_build_array(jsonb_build_object('attempt', attempts, 'worker', worker,
        'at', clock_timestamp(), 'type', %(type)s::text, 'error', %(error)s::text))
    END"""
_CHUNK = "load_id = %(load_id)s AND layer = %(layer)s AND chunk_no = %(chunk_no)s"


def attempt_failed(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int,
                   error_type: str, error: str) -> None:
    """Keep a failed attempt's error; the next attempt clears ``error``, not the history."""
    with conn.transaction():
        conn.execute(f"UPDATE geoload.chunks SET {_KEEP_ERROR} "  # noqa: S608 - constants
                     f"WHERE {_CHUNK} AND status <> 'loaded'",
                     dict(error=error, type=error_type, load_id=load_id, layer=layer,
                          chunk_no=chunk_no))


def fail_chunk(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int,
               error: str, error_type: str | None = None) -> None:
    conn.execute(f"UPDATE geoload.chunks SET status = 'failed', {_KEEP_ERROR}, "  # noqa: S608
                 f"finished_at = clock_timestamp() WHERE {_CHUNK} AND status <> 'loaded'",
                 dict(error=error, type=error_type, load_id=load_id, layer=layer,
                      chunk_no=chunk_no))


def fail_load(conn: psycopg.Connection, load_id: int, error: str, error_type: str,
              step: str, *, worker: str | None = None, attempts: int | None = None) -> bool:
    """Mark a load failed unless it already ended; True when this call failed it."""
    row = conn.execute("UPDATE geoload.loads SET status = 'failed', error = %s, error_type = %s, "
                       "error_step = %s, error_worker = %s, error_attempts = %s, "
                       "finished_at = clock_timestamp() WHERE load_id = %s "
                       "AND status <> ALL(%s) RETURNING load_id",
                       (error, error_type, step, worker, attempts, load_id,
                        list(TERMINAL))).fetchone()
    return row is not None


def staging_tables(conn: psycopg.Connection, load_id: int) -> list[str]:
    rows = conn.execute("SELECT staging_table FROM geoload.load_layers WHERE load_id = %s",
                        (load_id,)).fetchall()
    return [str(r[0]) for r in rows]


def take_live(conn: psycopg.Connection, dataset: str, load_id: int) -> str | None:
    """Record ``load_id`` as its dataset's live load, unless the live one came later in the
    :func:`fetch_order`; returns None if recorded, else the run id of the later live load.

    Call in the swap's transaction: the dataset's row stays locked until it commits, so
    publishes of one dataset are decided one at a time. A load pinned before loads had an
    order counts as older than any that has one.
    """
    row = conn.execute(
        "INSERT INTO geoload.live AS live (dataset, load_id, run_id, fetch_order, published_at) "
        "SELECT dataset, load_id, run_id, fetch_order, clock_timestamp() FROM geoload.loads "
        "WHERE load_id = %s "
        "ON CONFLICT (dataset) DO UPDATE SET load_id = excluded.load_id, "
        "run_id = excluded.run_id, fetch_order = excluded.fetch_order, "
        "published_at = excluded.published_at "
        "WHERE coalesce(live.fetch_order, 0) < coalesce(excluded.fetch_order, 1) "
        "RETURNING live.load_id", (load_id,)).fetchone()
    if row is not None:
        return None
    held = conn.execute("SELECT run_id FROM geoload.live WHERE dataset = %s",
                        (dataset,)).fetchone()
    assert held is not None
    return str(held[0])


def mark_published(conn: psycopg.Connection, load_id: int,
                   summary: dict[str, dict[str, Any]],
                   warnings: list[dict[str, Any]] | None = None) -> None:
    """Published, with the per-layer summary; ``warnings`` are added to the plan's."""
    conn.execute("UPDATE geoload.loads SET status = 'published', finished_at = clock_timestamp(), "
                 "layers = %s, warnings = coalesce(warnings, '[]'::jsonb) || %s::jsonb "
                 "WHERE load_id = %s",
                 (json.dumps(summary), json.dumps(warnings or []), load_id))


def mark_superseded(conn: psycopg.Connection, load_id: int, by_run: str) -> None:
    conn.execute("UPDATE geoload.loads SET status = 'superseded', superseded_by = %s, "
                 "finished_at = clock_timestamp() WHERE load_id = %s AND status <> ALL(%s)",
                 (by_run, load_id, list(TERMINAL)))


@dataclass(frozen=True)
class Leftover:
    """A table of the staging schema that no unfinished load needs, and why."""

    table: str
    reason: str


def leftover_staging(conn: psycopg.Connection) -> list[Leftover]:
    """Tables of the staging schema no unfinished load owns: those of failed, superseded or
    published loads, retired live tables, and tables no load knows of."""
    rows = conn.execute(
        "SELECT t.tablename, (SELECT format('load of %%s in run %%s is %%s', l.dataset, "
        "l.run_id, l.status) FROM geoload.load_layers x JOIN geoload.loads l USING (load_id) "
        "WHERE x.staging_table = t.tablename ORDER BY l.load_id DESC LIMIT 1) "
        "FROM pg_tables t WHERE t.schemaname = %s AND NOT EXISTS (SELECT 1 "
        "FROM geoload.load_layers x JOIN geoload.loads l USING (load_id) "
        "WHERE x.staging_table = t.tablename AND l.status <> ALL(%s)) ORDER BY 1",
        (STAGING, list(TERMINAL))).fetchall()
    return [Leftover(str(name), str(reason or "no load owns it (a retired live table)"))
            for name, reason in rows]


def staging_in_use(conn: psycopg.Connection, table: str) -> bool:
    """Whether an unfinished load owns the staging table ``table``."""
    row = conn.execute("SELECT 1 FROM geoload.load_layers x JOIN geoload.loads l "
                       "USING (load_id) WHERE x.staging_table = %s AND l.status <> ALL(%s)",
                       (table, list(TERMINAL))).fetchone()
    return row is not None


def dropped_features(conn: psycopg.Connection, load_id: int) -> dict[str, list[DroppedFeature]]:
    """Per layer, the dropped features its chunks listed, in fid order.

    Read once the layers are loaded: each chunk recorded its own in the transaction that
    loaded its rows, so a redelivered chunk never lists one twice.
    """
    rows = conn.execute("SELECT layer, dropped_features FROM geoload.chunks "
                        "WHERE load_id = %s AND dropped > 0 ORDER BY layer, fid_first",
                        (load_id,)).fetchall()
    found: dict[str, list[DroppedFeature]] = {}
    for layer, features in rows:
        found.setdefault(str(layer), []).extend(DroppedFeature(**f) for f in features or ())
    return found
