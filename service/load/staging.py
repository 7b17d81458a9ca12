"""Staging tables: where a load's rows go before the dataset is published.

Every identifier is composed with ``psycopg.sql``; names that come from a
catalog or a source file are never formatted into SQL text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import psycopg
from psycopg import sql

from service.load import names
from service.load.columns import GEOMETRY_COLUMN, Column
from service.load.names import STAGING

SRID = 4326


def staging_name(dataset: str, table: str, load_id: int) -> str:
    """``gadm__adm_2__l17`` for catalog table ``gadm.adm_2``: unique per load, never cut
    short by PostgreSQL (see :mod:`service.load.names`)."""
    return names.staging_table(dataset, table.split(".", 1)[1], load_id)


def staged(name: str) -> sql.Identifier:
    return sql.Identifier(STAGING, name)


def create(conn: psycopg.Connection, name: str, columns: Iterable[Column]) -> None:
    """An empty staging table; no indexes yet, since they are cheaper built after the load."""
    defs = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in columns]
    defs.append(sql.SQL("{} geometry(MultiPolygon, {})").format(
        sql.Identifier(GEOMETRY_COLUMN), sql.Literal(SRID)))
    table = staged(name)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(sql.SQL("CREATE TABLE {} ({}) WITH (autovacuum_enabled = false)").format(
        table, sql.SQL(", ").join(defs)))
    if lz4_available(conn):
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET COMPRESSION lz4").format(
            table, sql.Identifier(GEOMETRY_COLUMN)))


def ensure_schemas(conn: psycopg.Connection, schemas: tuple[str, ...]) -> None:
    """The target schemas a dataset's tables live in (``gadm``, ``timezone``)."""
    for schema in schemas:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def lz4_available(conn: psycopg.Connection) -> bool:
    """lz4 TOAST compression: big polygons compress ~3x faster than with pglz."""
    row = conn.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
                       "AND 'lz4' = ANY(enumvals)").fetchone()
    return row is not None


def build_indexes(conn: psycopg.Connection, name: str, key: str,
                  indexed: Iterable[str]) -> float:
    """Primary key, GiST on geom, B-trees on join keys, then ANALYZE; returns seconds."""
    started = time.perf_counter()
    table = staged(name)
    columns = [column for column in indexed if column != key]
    pkey, geom, *btrees = (sql.Identifier(names.index_name(name, role))
                           for role in names.index_roles(key, columns))
    conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
        table, pkey, sql.Identifier(key)))
    conn.execute(sql.SQL("CREATE INDEX {} ON {} USING gist ({})").format(
        geom, table, sql.Identifier(GEOMETRY_COLUMN)))
    for index, column in zip(btrees, columns):
        conn.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
            index, table, sql.Identifier(column)))
    conn.execute(sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(table))
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    return time.perf_counter() - started


def table_bytes(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(
        "SELECT pg_total_relation_size(format('%%I.%%I', %s::text, %s::text)::regclass)",
        (STAGING, name)).fetchone()
    return int(row[0]) if row else 0


def drop(conn: psycopg.Connection, names: Iterable[str]) -> None:
    for name in names:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staged(name)))
