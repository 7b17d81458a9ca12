"""Did a peer end where geoload ends? Same rows, geometry(MultiPolygon,4326), all valid,
a GiST index: otherwise its time is not comparable, and its row says why."""

from __future__ import annotations

import psycopg
from psycopg import sql

from service import catalog
from service.settings import Settings


class PeerFailed(Exception):
    """A peer failed to load, or loaded something other than geoload's result."""


def expected_counts(dataset: str, settings: Settings) -> dict[str, int]:
    """Rows per table in what geoload published: table name → count."""
    with psycopg.connect(settings.database_url) as conn:
        return {layer.table_name: _count(conn, layer.schema, layer.table_name)
                for layer in catalog.get(dataset).layers}


def verify(settings: Settings, schema: str, expected: dict[str, int]) -> None:
    """Raise PeerFailed naming the first table in ``schema`` that differs from geoload's."""
    with psycopg.connect(settings.database_url) as conn:
        for table, count in expected.items():
            where = f"{schema}.{table}"
            column = _geometry_column(conn, schema, table, where)
            got = _count(conn, schema, table)
            if got != count:
                raise PeerFailed(f"{where}: {got} rows, geoload published {count}")
            invalid = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE NOT ST_IsValid({})")
                                   .format(sql.Identifier(schema, table),
                                           sql.Identifier(column))).fetchone()
            if invalid and invalid[0]:
                raise PeerFailed(f"{where}: {invalid[0]} invalid geometries")
            if not conn.execute(
                    "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
                    "AND indexdef ILIKE %s", (schema, table, "%USING gist%")).fetchone():
                raise PeerFailed(f"{where}: no GiST index")


def _geometry_column(conn: psycopg.Connection, schema: str, table: str, where: str) -> str:
    rows = conn.execute(
        "SELECT f_geometry_column, type, srid FROM geometry_columns "
        "WHERE f_table_schema = %s AND f_table_name = %s", (schema, table)).fetchall()
    if len(rows) != 1:
        raise PeerFailed(f"{where}: {len(rows)} geometry columns (table missing?), not 1")
    column, kind, srid = rows[0]
    if (kind, srid) != ("MULTIPOLYGON", 4326):
        raise PeerFailed(f"{where}: geometry({kind},{srid}), not geometry(MultiPolygon,4326)")
    return str(column)


def _count(conn: psycopg.Connection, schema: str, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(schema, table))).fetchone()
    return int(row[0]) if row else 0
