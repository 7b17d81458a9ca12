"""Staging tables no unfinished load needs, found by what the ledger says owns them."""

from __future__ import annotations

import psycopg
from psycopg import sql

from service.ledger.records import TERMINAL, Leftover
from service.load.names import STAGING

#: Each load's staging tables: its layers' and its lookup table (issue 15).
_OWNED = sql.SQL("(SELECT load_id, staging_table AS tbl FROM geoload.load_layers "
          "UNION ALL SELECT load_id, lookup_staging FROM geoload.loads "
          "WHERE lookup_staging IS NOT NULL)")


def leftover_staging(conn: psycopg.Connection) -> list[Leftover]:
    """Tables of the staging schema no unfinished load owns: those of failed, superseded or
    published loads, retired live tables, and tables no load knows of."""
    rows = conn.execute(sql.SQL(
        "SELECT t.tablename, (SELECT format('load of %%s in run %%s is %%s', l.dataset, "
        "l.run_id, l.status) FROM {owned} x JOIN geoload.loads l USING (load_id) "
        "WHERE x.tbl = t.tablename ORDER BY l.load_id DESC LIMIT 1) "
        "FROM pg_tables t WHERE t.schemaname = %s AND NOT EXISTS (SELECT 1 "
        "FROM {owned} x JOIN geoload.loads l USING (load_id) "
        "WHERE x.tbl = t.tablename AND l.status <> ALL(%s)) ORDER BY 1").format(owned=_OWNED),
        (STAGING, list(TERMINAL))).fetchall()
    return [Leftover(str(name), str(reason or "no load owns it (a retired live table)"))
            for name, reason in rows]


def staging_in_use(conn: psycopg.Connection, table: str) -> bool:
    """Whether an unfinished load owns the staging table ``table``."""
    row = conn.execute(sql.SQL("SELECT 1 FROM {} x JOIN geoload.loads l USING (load_id) "
                               "WHERE x.tbl = %s AND l.status <> ALL(%s)").format(_OWNED),
                       (table, list(TERMINAL))).fetchone()
    return row is not None
