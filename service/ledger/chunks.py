"""``geoload.chunks``: the ledger that makes a chunk's effect exactly-once.

A chunk's row is locked ``FOR UPDATE`` for its whole COPY and marked loaded in the same
transaction; the layer row's lock then serializes the counters, so exactly one chunk
sees its layer complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import psycopg

from service.data_warnings import DroppedFeature
from service.identity import worker_id
from service.ledger.records import ChunkState
from service.load.budget import send_order
from service.load.records import Chunk, ChunkCounts


def pending(conn: psycopg.Connection, load_id: int,
            capacity: int | None = None) -> list[tuple[str, int]]:
    """(layer, chunk_no) not yet loaded, heaviest first; with a worker's budget ``capacity``,
    in the order :func:`service.load.budget.send_order` gives."""
    rows = conn.execute("SELECT layer, chunk_no, weight FROM geoload.chunks WHERE load_id = %s "
                        "AND status <> 'loaded' ORDER BY weight DESC, layer, chunk_no",
                        (load_id,)).fetchall()
    weights = {(str(layer), int(n)): int(weight) for layer, n, weight in rows}
    return list(weights) if capacity is None else send_order(weights, capacity)


def get(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int, *,
        lock: bool = False) -> ChunkState | None:
    query = ("SELECT fid_first, fid_last, features, weight, status, part FROM geoload.chunks "
             "WHERE load_id = %s AND layer = %s AND chunk_no = %s")
    row = conn.execute(query + (" FOR UPDATE" if lock else ""),
                       (load_id, layer, chunk_no)).fetchone()
    if row is None:
        return None
    first, last, features, weight, status, part = row
    return ChunkState(layer, chunk_no,
                      Chunk(int(first), int(last), int(features), int(weight), str(part)),
                      str(status))


def start_attempt(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int) -> None:
    """Count an attempt in its own transaction, so that it survives a rollback of the load.

    ``error`` is the current attempt's; earlier ones stay in ``errors``."""
    with conn.transaction():
        conn.execute("UPDATE geoload.chunks SET attempts = attempts + 1, worker = %s, "
                     "started_at = clock_timestamp(), error = NULL "
                     "WHERE load_id = %s AND layer = %s "
                     "AND chunk_no = %s AND status <> 'loaded'",
                     (worker_id(), load_id, layer, chunk_no))


def complete(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int,
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


def fail(conn: psycopg.Connection, load_id: int, layer: str, chunk_no: int,
         error: str, error_type: str | None = None) -> None:
    conn.execute(f"UPDATE geoload.chunks SET status = 'failed', {_KEEP_ERROR}, "  # noqa: S608
                 f"finished_at = clock_timestamp() WHERE {_CHUNK} AND status <> 'loaded'",
                 dict(error=error, type=error_type, load_id=load_id, layer=layer,
                      chunk_no=chunk_no))


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
