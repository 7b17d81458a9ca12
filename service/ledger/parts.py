"""``geoload.load_parts``: the files of a load made of several (GADM by country).

Each part's fetch pins its own file's sha256, as a one-file load pins its file on the
load row; the fetch that pins the last part is the one that sends the plan, decided
under the load row's lock, so exactly one does.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from service.fetch.http import Validators


def ensure(conn: psycopg.Connection, load_id: int, parts: tuple[str, ...]) -> None:
    """One row per part, unpinned; a redelivered fan-out adds nothing."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO geoload.load_parts (load_id, part) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING", [(load_id, part) for part in parts])


def pinned(conn: psycopg.Connection, load_id: int) -> dict[str, str | None]:
    """Per part, the sha256 its fetch pinned (None: not fetched yet)."""
    rows = conn.execute("SELECT part, sha256 FROM geoload.load_parts WHERE load_id = %s "
                        "ORDER BY part", (load_id,)).fetchall()
    return {str(part): sha for part, sha in rows}


def record(conn: psycopg.Connection, load_id: int, part: str, url: str,
           validators: Validators) -> None:
    """Pin the file a part loads; a part pinned already keeps its first version."""
    v = validators
    conn.execute("UPDATE geoload.load_parts SET source_url = %s, etag = %s, last_modified = %s, "
                 "bytes = %s, sha256 = %s, fetched_at = clock_timestamp() "
                 "WHERE load_id = %s AND part = %s AND sha256 IS NULL",
                 (url, v.etag, v.last_modified, v.size, v.sha256, load_id, part))


def combined(conn: psycopg.Connection, load_id: int) -> tuple[str, int]:
    """The load's version as one sha256 (over each part's code and sha256) and its bytes."""
    rows = conn.execute("SELECT part, sha256, bytes FROM geoload.load_parts WHERE load_id = %s "
                        "ORDER BY part", (load_id,)).fetchall()
    digest = hashlib.sha256("\n".join(f"{part} {sha}" for part, sha, _ in rows).encode())
    return digest.hexdigest(), sum(int(size or 0) for _, _, size in rows)
