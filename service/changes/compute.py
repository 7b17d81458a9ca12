"""Compare a layer's live table with its staging table by key, in the database, before the swap.

Everything is set-based SQL over the two tables (B-tree on the key in both): added and
removed keys are anti-joins, renamed keys a join comparing the name fields, reshaped keys
a join comparing geometries with PostGIS's ``=`` (same coordinates in the same order:
the bytes, not the shape). Only the reshaped rows pay for ``ST_SymDifference`` and the
geodesic areas, so a release that changes a few areas costs a scan of both tables plus
those few. Areas are km² on the WGS84 spheroid (``ST_Area`` of geography).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager

import psycopg
from psycopg import sql

from service.changes.model import ChangeReport, Compared, LayerChanges, Renamed, Reshaped
from service.postgres import local_setting

_KM2 = 1e6


def compare(conn: psycopg.Connection, dataset: str, load_id: int,
            layers: Sequence[Compared]) -> ChangeReport:
    """The change report of ``load_id``; ``first_load`` if no live table exists yet.

    A layer with no live table (new in this version) has all its keys added; one the new
    version lacks (``staging`` None) all its keys removed. Call before the swap (inside
    its transaction or before it), while the live tables are still the old version.
    Reads only; safe to repeat.
    """
    started = time.perf_counter()
    live = {layer.live for layer in layers if _exists(conn, layer.live)}
    if not live:
        return ChangeReport(dataset, load_id, True, (), time.perf_counter() - started)
    found = tuple(_layer(conn, layer, layer.live in live) for layer in layers
                  if layer.live in live or layer.staging is not None)
    return ChangeReport(dataset, load_id, False, found, time.perf_counter() - started)


def _layer(conn: psycopg.Connection, layer: Compared, live: bool) -> LayerChanges:
    old = sql.Identifier(*layer.live.split(".", 1))
    key = sql.Identifier(layer.key)
    if layer.staging is None:
        return LayerChanges(layer.live, removed=_keys(conn, old, key))
    new = sql.Identifier(*layer.staging.split(".", 1))
    if not live:
        return LayerChanges(layer.live, added=_keys(conn, new, key))
    rows = _differences(conn, old, new, key, layer.names)
    added = tuple(sorted({k for k, kind, _ in rows if kind == "added"}))
    removed = tuple(sorted({k for k, kind, _ in rows if kind == "removed"}))
    renamed = tuple(Renamed(k, fields) for k, kind, fields in rows if kind == "renamed")
    reshaped = [k for k, kind, _ in rows if kind == "reshaped"]
    return LayerChanges(layer.live, added=added, removed=removed, renamed=renamed,
                        reshaped=_areas(conn, old, new, key, reshaped))


def _keys(conn: psycopg.Connection, table: sql.Composable,
          key: sql.Identifier) -> tuple[str, ...]:
    """Every key of a whole layer that came or went, sorted as a compared layer's are."""
    rows = conn.execute(sql.SQL("SELECT DISTINCT {k}::text FROM {t} WHERE {k} IS NOT NULL"
                                ).format(k=key, t=table)).fetchall()
    return tuple(sorted(str(k) for (k,) in rows))


Difference = tuple[str, str, dict[str, tuple[str | None, str | None]]]


def _differences(conn: psycopg.Connection, old: sql.Composable, new: sql.Composable,
                 key: sql.Identifier, names: Sequence[str]) -> list[Difference]:
    """(key, kind, changed name fields) for every difference: one full join, one pass.

    Each table is read once; PostGIS's ``=`` compares geometries exactly (same coordinates
    in the same order). ``OFFSET 0`` keeps the subquery whole, so each pair of geometries
    is detoasted and compared once, not again in the outer filter.
    """
    pairs = [sql.SQL("o.{f}::text, n.{f}::text").format(f=sql.Identifier(f)) for f in names]
    differs: list[sql.Composable] = [
        sql.SQL("o.{f} IS DISTINCT FROM n.{f}").format(f=sql.Identifier(f)) for f in names]
    with _merge_join(conn):
        rows = conn.execute(sql.SQL(
            "SELECT * FROM (SELECT o.{k}::text AS old, n.{k}::text AS new, "
            "  o.geom IS DISTINCT FROM n.geom AS reshaped, {renamed} AS renamed{pairs} "
            "  FROM {old} o FULL JOIN {new} n ON n.{k} = o.{k} OFFSET 0) d "
            "WHERE old IS NULL OR new IS NULL OR reshaped OR renamed "
            "ORDER BY old COLLATE \"C\", new COLLATE \"C\"").format(
            k=key, old=old, new=new, renamed=sql.SQL(" OR ").join(differs or [sql.SQL("false")]),
            pairs=sql.SQL("").join(sql.SQL(", ") + p for p in pairs))).fetchall()
    out: list[Difference] = []
    for before, after, reshaped, renamed, *values in rows:
        if before is None or after is None:
            if (before or after) is not None:
                out.append((before or after, "added" if before is None else "removed", {}))
            continue
        if renamed:
            out.append((before, "renamed", {
                name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(names)
                if values[2 * i] != values[2 * i + 1]}))
        if reshaped:
            out.append((before, "reshaped", {}))
    return out


def _merge_join(conn: psycopg.Connection) -> AbstractContextManager[None]:
    """Join the two tables in key order (their B-tree indexes), not through a hash table.

    A hash join keeps one table's rows, geometries inline, in memory: at GADM's world scale
    ``adm_3`` is 144,193 rows of 2.7 kB, so with the default ``work_mem`` the join spilled
    64 batches to disk (3.1 s; a report of a world reload took 8-10 s, 40 s with a cold
    cache). In key order nothing is held: 0.6 s for that table (EXPLAIN ANALYZE, world
    size, warm).
    """
    return local_setting(conn, "enable_hashjoin", "off")


def _areas(conn: psycopg.Connection, old: sql.Composable, new: sql.Composable,
           key: sql.Identifier, keys: list[str]) -> tuple[Reshaped, ...]:
    """Areas before and after, and of the symmetric difference: only for reshaped keys."""
    if not keys:
        return ()
    rows = conn.execute(sql.SQL(
        "SELECT o.{k}::text, ST_Area(o.geom::geography) / {km2}, "
        "       ST_Area(n.geom::geography) / {km2}, "
        "       ST_Area(ST_SymDifference(o.geom, n.geom)::geography) / {km2} "
        "FROM {old} o JOIN {new} n ON n.{k} = o.{k} WHERE o.{k}::text = ANY(%s) "
        "ORDER BY o.{k}::text COLLATE \"C\"").format(k=key, km2=sql.Literal(_KM2), old=old,
                                                    new=new),
        (keys,)).fetchall()
    return tuple(Reshaped(*row) for row in rows)


def _exists(conn: psycopg.Connection, table: str) -> bool:
    name = sql.Identifier(*table.split(".", 1)).as_string(conn)
    row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    return row is not None and row[0] is not None
