"""Earlier versions kept under ``geoload_archive`` instead of dropped, and brought back.

``GEOLOAD_KEEP_VERSIONS=N`` keeps the last N versions of each table that a publish
replaces, named by release and load id (``gadm__adm_2__2026c__l17``: schema, table,
release, the load that published it). Moves are renames inside the swap's transaction,
so they cost milliseconds whatever the table's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import psycopg
from psycopg import sql

from service.load import names
from service.load.names import ARCHIVE, STAGING
from service.publish import swap

__all__ = ["ARCHIVE", "archive_name", "drop", "ensure", "keep", "sizes", "stage"]


def archive_name(target: str, release: str | None, load_id: int) -> str:
    """``gadm__adm_2__2026c__l17`` for ``gadm.adm_2`` as load 17 (release 2026c) loaded it."""
    schema, table = target.split(".", 1)
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", release)[:20] + "__" if release else ""
    return names.bounded(f"{schema}__{table}__", f"{tag}l{load_id}")


def keep(conn: psycopg.Connection, retired: str, archived: str) -> None:
    """Move a retired table (in the staging schema) into the archive, indexes renamed."""
    ensure(conn)
    conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
        sql.Identifier(STAGING, retired), sql.Identifier(ARCHIVE)))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(ARCHIVE, retired), sql.Identifier(archived)))
    swap.rename_indexes(conn, ARCHIVE, archived, retired, archived)


def stage(conn: psycopg.Connection, archived: str, staging_table: str) -> None:
    """Move a kept table back into the staging schema, where the swap takes it from."""
    conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
        sql.Identifier(ARCHIVE, archived), sql.Identifier(STAGING)))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(STAGING, archived), sql.Identifier(staging_table)))
    swap.rename_indexes(conn, STAGING, staging_table, archived, staging_table)


def drop(conn: psycopg.Connection, tables: Iterable[str]) -> None:
    for table in tables:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(ARCHIVE, table)))


def ensure(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ARCHIVE)))


def sizes(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    """Bytes on disk of each archived table (with indexes and TOAST); absent ones left out."""
    rows = conn.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (ARCHIVE, tables)).fetchall()
    return {str(name): int(size) for name, size in rows}
