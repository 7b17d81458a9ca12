"""``geoload.loads`` and ``geoload.live``: a dataset's load from queued to its end.

Every state change that must happen exactly once is a conditional UPDATE on a
locked row, inside the same transaction as the work it records.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import psycopg

from service.catalog.options import LoadOptions
from service.ledger.records import TERMINAL, Load, LookupCost, Stalled

if TYPE_CHECKING:
    from service.fetch.http import Validators


def get(conn: psycopg.Connection, run_id: str, dataset: str, *,
        lock: bool = False) -> Load | None:
    query = ("SELECT load_id, run_id, dataset, status, sha256, layers_total, layers_ready, "
             "strict, options, lookup_staging FROM geoload.loads "
             "WHERE run_id = %s AND dataset = %s")
    row = conn.execute(query + (" FOR UPDATE" if lock else ""), (run_id, dataset)).fetchone()
    if row is None:
        return None
    load_id, run, name, status, sha256, total, ready, strict, options, lookup_staging = row
    return Load(load_id, run, name, status, sha256, total, ready, strict,
                LoadOptions.from_json(options), lookup_staging)


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


def record_fetch(conn: psycopg.Connection, load_id: int, url: str, validators: "Validators",
                 order: int | None = None) -> None:
    """Pin the version a run loads: every later step reads exactly these bytes.

    ``order`` is the :func:`fetch_order` taken when upstream answered with these bytes;
    without one (upstream answered 304: the cached copy is still current), it is taken now.
    """
    v = validators
    conn.execute(
        "UPDATE geoload.loads SET source_url = %s, etag = %s, last_modified = %s, bytes = %s, "
        "sha256 = %s, fetched_at = clock_timestamp(), status = 'fetched', "
        "fetch_order = coalesce(%s, nextval('geoload.fetch_order')) "
        "WHERE load_id = %s AND sha256 IS NULL AND status <> ALL(%s)",
        (url, v.etag, v.last_modified, v.size, v.sha256, order, load_id, list(TERMINAL)))


def download_progress(conn: psycopg.Connection, load_id: int, done: int) -> None:
    """A download is moving: the sweep must not take it for a stall, however long it takes."""
    conn.execute("UPDATE geoload.loads SET download_bytes = %s, download_at = clock_timestamp() "
                 "WHERE load_id = %s AND status <> ALL(%s)", (done, load_id, list(TERMINAL)))


def fail(conn: psycopg.Connection, load_id: int, error: str, error_type: str,
         step: str, *, worker: str | None = None, attempts: int | None = None) -> bool:
    """Mark a load failed unless it already ended; True when this call failed it."""
    row = conn.execute("UPDATE geoload.loads SET status = 'failed', error = %s, error_type = %s, "
                       "error_step = %s, error_worker = %s, error_attempts = %s, "
                       "finished_at = clock_timestamp() WHERE load_id = %s "
                       "AND status <> ALL(%s) RETURNING load_id",
                       (error, error_type, step, worker, attempts, load_id,
                        list(TERMINAL))).fetchone()
    return row is not None


def cancel(conn: psycopg.Connection, run_id: str,
           reason: str) -> tuple[dict[int, str], dict[str, str], list[int]]:
    """Cancel the run's unfinished loads at once; returns their datasets by load id; per
    dataset, the status of each load that had already ended (left as it was); and the ids
    of those cancelled before (whose staging tables a step may have left)."""
    cancelled = conn.execute(
        "UPDATE geoload.loads SET status = 'cancelled', error = %s, error_type = 'Cancelled', "
        "error_step = 'cancel', finished_at = clock_timestamp() "
        "WHERE run_id = %s AND status <> ALL(%s) RETURNING load_id, dataset",
        (reason, run_id, list(TERMINAL))).fetchall()
    now = {int(load_id): str(dataset) for load_id, dataset in sorted(cancelled)}
    rows = conn.execute("SELECT load_id, dataset, status FROM geoload.loads WHERE run_id = %s "
                        "ORDER BY load_id", (run_id,)).fetchall()
    before = [(int(load_id), str(d), str(s)) for load_id, d, s in rows
              if int(load_id) not in now]
    return (now, {d: s for _, d, s in before},
            [load_id for load_id, _, s in before if s == "cancelled"])


def still_going(conn: psycopg.Connection, load_id: int) -> bool:
    """Whether the load has not ended (cancelled, failed, ...): a long step asks between
    batches, so that a cancelled run stops at the next one."""
    row = conn.execute("SELECT status <> ALL(%s) FROM geoload.loads WHERE load_id = %s",
                       (list(TERMINAL), load_id)).fetchone()
    return bool(row and row[0])


def take_live(conn: psycopg.Connection, dataset: str, load_id: int) -> str | None:
    """Record ``load_id`` as its dataset's live load in its target schema, unless the live
    one there came later in the :func:`fetch_order`; returns None if recorded, else the run
    id of the later live load. Loads into different schemas never supersede each other.

    Call in the swap's transaction: the dataset's row stays locked until it commits, so
    publishes of one dataset are decided one at a time. A load pinned before loads had an
    order counts as older than any that has one.
    """
    row = conn.execute(
        "INSERT INTO geoload.live AS live (dataset, target_schema, load_id, run_id, fetch_order, "
        "published_at) SELECT dataset, coalesce(target_schema, ''), load_id, run_id, "
        "fetch_order, clock_timestamp() FROM geoload.loads WHERE load_id = %s "
        "ON CONFLICT (dataset, target_schema) DO UPDATE SET load_id = excluded.load_id, "
        "run_id = excluded.run_id, fetch_order = excluded.fetch_order, "
        "published_at = excluded.published_at "
        "WHERE coalesce(live.fetch_order, 0) < coalesce(excluded.fetch_order, 1) "
        "RETURNING live.load_id", (load_id,)).fetchone()
    if row is not None:
        return None
    held = conn.execute("SELECT v.run_id FROM geoload.live v JOIN geoload.loads l "
                        "ON l.load_id = %s AND v.dataset = l.dataset "
                        "AND v.target_schema = coalesce(l.target_schema, '')",
                        (load_id,)).fetchone()
    assert held is not None
    return str(held[0])


def live_schemas(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Every (dataset, schema) with a live load, ``''`` for the catalog's schemas; none in a
    database geoload never set up (a lookup may be asked before any load)."""
    row = conn.execute("SELECT to_regclass('geoload.live')").fetchone()
    if row is None or row[0] is None:
        return []
    rows = conn.execute("SELECT dataset, target_schema FROM geoload.live ORDER BY 1, 2")
    return [(str(dataset), str(schema)) for dataset, schema in rows.fetchall()]


def options_of(conn: psycopg.Connection, run_id: str) -> dict[str, LoadOptions]:
    """Each load's recorded options in a run (loads enqueued before options: none)."""
    rows = conn.execute("SELECT dataset, options FROM geoload.loads WHERE run_id = %s "
                        "AND options IS NOT NULL", (run_id,)).fetchall()
    return {str(name): opts for name, data in rows
            if (opts := LoadOptions.from_json(data)) is not None}


def mark_published(conn: psycopg.Connection, load_id: int,
                   summary: dict[str, dict[str, Any]],
                   warnings: list[dict[str, Any]] | None = None) -> None:
    """Published, with the per-layer summary; ``warnings`` are added to the plan's."""
    conn.execute("UPDATE geoload.loads SET status = 'published', finished_at = clock_timestamp(), "
                 "layers = %s, warnings = coalesce(warnings, '[]'::jsonb) || %s::jsonb "
                 "WHERE load_id = %s",
                 (json.dumps(summary), json.dumps(warnings or []), load_id))


def record_lookup(conn: psycopg.Connection, load_id: int, cost: LookupCost) -> None:
    """What the load's lookup table cost, kept with the load."""
    conn.execute("UPDATE geoload.loads SET lookup = %s WHERE load_id = %s",
                 (json.dumps(asdict(cost)), load_id))


def published_lookup(conn: psycopg.Connection, dataset: str) -> LookupCost | None:
    """The lookup table cost of the dataset's last published load; None if it had none."""
    row = conn.execute("SELECT lookup FROM geoload.loads WHERE dataset = %s "
                       "AND status = 'published' ORDER BY load_id DESC LIMIT 1",
                       (dataset,)).fetchone()
    return LookupCost(**row[0]) if row and row[0] else None


def mark_superseded(conn: psycopg.Connection, load_id: int, by_run: str) -> None:
    conn.execute("UPDATE geoload.loads SET status = 'superseded', superseded_by = %s, "
                 "finished_at = clock_timestamp() WHERE load_id = %s AND status <> ALL(%s)",
                 (by_run, load_id, list(TERMINAL)))


_STALLED = """
SELECT l.load_id, l.run_id, l.dataset, l.status
FROM geoload.loads l JOIN geoload.runs r USING (run_id)
WHERE l.status <> ALL(%(terminal)s)
  AND greatest(r.created_at, l.started_at, l.fetched_at, l.download_at,
               (SELECT max(greatest(c.started_at, c.finished_at)) FROM geoload.chunks c
                WHERE c.load_id = l.load_id))
      < clock_timestamp() - make_interval(secs => %(seconds)s)
"""


def stalled(conn: psycopg.Connection, older_than_s: float) -> list[Stalled]:
    """Unfinished loads nothing has touched (run, load, download, chunk) for ``older_than_s``."""
    rows = conn.execute(_STALLED, {"terminal": list(TERMINAL), "seconds": older_than_s})
    return [Stalled(int(load_id), str(run_id), str(dataset), str(status))
            for load_id, run_id, dataset, status in rows.fetchall()]
