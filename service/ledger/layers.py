"""``geoload.load_layers``: each layer's plan, saved once, and its progress to ``ready``."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.rows import dict_row

from service.ledger.records import LayerState
from service.load.columns import Column
from service.load.records import LayerPlan, PlannedLayer

_PLAN = ("layer", "target_table", "staging_table", "driver", "fid_column", "source_count")


def save_plan(conn: psycopg.Connection, load_id: int, planned: list[PlannedLayer]) -> None:
    """The plan, its chunks and its schema warnings, recorded with the load."""
    for layer in planned:
        p = layer.plan
        conn.execute(
            "INSERT INTO geoload.load_layers (load_id, layer, target_table, staging_table, "
            "driver, fid_column, columns, source_count, chunks_total) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (load_id, p.layer, p.target_table, p.staging_table, p.driver, p.fid_column,
             json.dumps([c.as_json() for c in p.columns]), p.source_count, len(layer.chunks)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO geoload.chunks (load_id, layer, chunk_no, fid_first, fid_last, "
                "features, weight, part) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(load_id, p.layer, n, c.fid_first, c.fid_last, c.features, c.weight, c.part)
                 for n, c in enumerate(layer.chunks)])
    warnings = [w.as_json() for layer in planned for w in layer.warnings]
    conn.execute("UPDATE geoload.loads SET layers_total = %s, status = 'loading', warnings = %s "
                 "WHERE load_id = %s", (len(planned), json.dumps(warnings), load_id))


def _state(row: dict[str, Any]) -> LayerState:
    plan = LayerPlan(**{key: row[key] for key in _PLAN},
                     columns=[Column.from_json(c) for c in row["columns"]])
    return LayerState(plan, row["status"], row["chunks_total"], row["chunks_done"],
                      row["loaded"], row["empty"], row["repaired"], row["parts_dropped"],
                      row["dropped"], row["table_bytes"])


def get(conn: psycopg.Connection, load_id: int, layer: str, *,
        lock: bool = False) -> LayerState | None:
    with conn.cursor(row_factory=dict_row) as cur:
        query = "SELECT * FROM geoload.load_layers WHERE load_id = %s AND layer = %s"
        row = cur.execute(query + (" FOR UPDATE" if lock else ""), (load_id, layer)).fetchone()
    return _state(row) if row else None


def of_load(conn: psycopg.Connection, load_id: int) -> list[LayerState]:
    """Every layer of a load, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT * FROM geoload.load_layers WHERE load_id = %s ORDER BY layer",
                           (load_id,)).fetchall()
    return [_state(row) for row in rows]


def live_tables(conn: psycopg.Connection, dataset: str, target_schema: str) -> list[str]:
    """The tables of the load live now for (dataset, schema): what the version a publish
    replaces holds. Call before :func:`~service.ledger.loads.take_live` moves it on."""
    rows = conn.execute("SELECT l.target_table FROM geoload.live v "
                        "JOIN geoload.load_layers l USING (load_id) "
                        "WHERE v.dataset = %s AND v.target_schema = %s ORDER BY l.layer",
                        (dataset, target_schema)).fetchall()
    return [str(r[0]) for r in rows]


def mark_ready(conn: psycopg.Connection, load_id: int, layer: str, table_bytes: int,
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


def staging_tables(conn: psycopg.Connection, load_id: int) -> list[str]:
    """Every staging table of a load: its layers' and its lookup table."""
    rows = conn.execute("SELECT staging_table FROM geoload.load_layers WHERE load_id = %s "
                        "UNION ALL SELECT lookup_staging FROM geoload.loads "
                        "WHERE load_id = %s AND lookup_staging IS NOT NULL",
                        (load_id, load_id)).fetchall()
    return [str(r[0]) for r in rows]


def save_lookup(conn: psycopg.Connection, load_id: int, table: str) -> None:
    """The staging lookup table the load's chunks cut pieces into: the load owns it."""
    conn.execute("UPDATE geoload.loads SET lookup_staging = %s WHERE load_id = %s",
                 (table, load_id))
