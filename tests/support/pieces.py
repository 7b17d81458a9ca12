"""Do a lookup table's pieces cover each feature of its data table exactly once?

The expectation comes from PostGIS on the data table (each feature's area), not from the
code that cut the pieces: a duplicated chunk would double a key's area, a lost one leave
it short or missing.
"""

from __future__ import annotations

from typing import Any

import psycopg


def pieces_off(db: psycopg.Connection, data: str, lookup: str, key: str) -> list[Any]:
    """(key, data area, pieces' area) for every key whose pieces' summed area differs from
    its features' (relative 1e-9), or that only one side has. ``lookup`` may be a
    subquery, to take one source's pieces: ``(SELECT * FROM gadm.gadm_lookup WHERE
    source = 'gadm.adm_3') l``."""
    return db.execute(
        f"SELECT d.{key}, d.a, p.a FROM (SELECT {key}, sum(ST_Area(geom)) a FROM {data} "  # noqa: S608
        f"WHERE geom IS NOT NULL GROUP BY 1) d FULL JOIN (SELECT key, sum(ST_Area(geom)) a "
        f"FROM {lookup} GROUP BY 1) p ON p.key = d.{key} "
        "WHERE p.a IS NULL OR d.a IS NULL OR abs(p.a - d.a) > 1e-9 * greatest(d.a, 1e-12)"
    ).fetchall()


def gadm_pieces_off(db: psycopg.Connection, levels: range = range(6)) -> dict[int, list[Any]]:
    """:func:`pieces_off` for each GADM level (keyed by ``gid_k``); {} if all cover."""
    found = {k: pieces_off(db, f"gadm.adm_{k}", f"(SELECT * FROM gadm.gadm_lookup WHERE "
                                                f"source = 'gadm.adm_{k}') l", f"gid_{k}")
             for k in levels}
    return {k: off for k, off in found.items() if off}
