"""Staging tables no unfinished load needs, found by what the ledger says owns them."""

from __future__ import annotations

import psycopg

from service.ledger.records import TERMINAL, Leftover
from service.load.names import STAGING


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
