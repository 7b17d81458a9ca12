"""``geoload.archive``: which earlier versions are kept, table by table, under
``geoload_archive`` (``GEOLOAD_KEEP_VERSIONS``), for a rollback or a comparison.

A kept version is the load that published it: its tables move here when a newer load
replaces them, in the swap's transaction, and back when a rollback restores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True)
class Kept:
    """One kept table of an earlier version."""

    load_id: int
    dataset: str
    target_schema: str
    target_table: str
    archive_table: str
    release: str | None
    archived_at: datetime | None = None


def previous_live(conn: psycopg.Connection, dataset: str, target_schema: str
                  ) -> tuple[int, str | None] | None:
    """The live load (id, release) of (dataset, schema), its row locked until commit, so
    that concurrent publishes label what they retire correctly."""
    row = conn.execute(
        "SELECT v.load_id, l.release FROM geoload.live v LEFT JOIN geoload.loads l "
        "USING (load_id) WHERE v.dataset = %s AND v.target_schema = %s FOR UPDATE OF v",
        (dataset, target_schema)).fetchone()
    return (int(row[0]), row[1]) if row else None


def record(conn: psycopg.Connection, kept: list[Kept]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO geoload.archive (load_id, dataset, target_schema, target_table, "
            "archive_table, release) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(k.load_id, k.dataset, k.target_schema, k.target_table, k.archive_table, k.release)
             for k in kept])


def versions(conn: psycopg.Connection, dataset: str | None = None,
             target_schema: str | None = None) -> list[Kept]:
    """Kept tables, newest version first (of one dataset and schema, or of all)."""
    rows = conn.execute(
        "SELECT load_id, dataset, target_schema, target_table, archive_table, release, "
        "archived_at FROM geoload.archive WHERE (%(d)s::text IS NULL OR dataset = %(d)s) "
        "AND (%(s)s::text IS NULL OR target_schema = %(s)s) "
        "ORDER BY dataset, target_schema, load_id DESC, target_table",
        {"d": dataset, "s": target_schema}).fetchall()
    return [Kept(int(r[0]), *r[1:]) for r in rows]


def forget(conn: psycopg.Connection, load_id: int) -> None:
    conn.execute("DELETE FROM geoload.archive WHERE load_id = %s", (load_id,))


def restore_record(conn: psycopg.Connection, run_id: str, dataset: str, restored: int) -> None:
    """A rollback's load takes the restored version's provenance, and the next place in the
    fetch order: it is the newest version now, until upstream publishes another."""
    conn.execute(
        "UPDATE geoload.loads n SET status = 'published', release = o.release, "
        "source_url = o.source_url, etag = o.etag, last_modified = o.last_modified, "
        "bytes = o.bytes, sha256 = o.sha256, layers = o.layers, warnings = o.warnings, "
        "options = o.options, target_schema = o.target_schema, restored_from = o.load_id, "
        "started_at = clock_timestamp(), fetched_at = clock_timestamp(), "
        "finished_at = clock_timestamp(), fetch_order = nextval('geoload.fetch_order'), "
        "layers_total = o.layers_total, layers_ready = o.layers_total "
        "FROM geoload.loads o WHERE o.load_id = %s AND n.run_id = %s AND n.dataset = %s",
        (restored, run_id, dataset))
