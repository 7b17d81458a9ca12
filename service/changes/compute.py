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

import psycopg
from psycopg import sql

from service.changes.model import ChangeReport, Compared, LayerChanges, Renamed, Reshaped

_KM2 = 1e6


def compare(conn: psycopg.Connection, dataset: str, load_id: int,
            layers: Sequence[Compared]) -> ChangeReport:
    """The change report of ``load_id``; ``first_load`` if no live table exists yet.

    Call before the swap (inside its transaction or before it), while the live tables
    are still the old version. Reads only; safe to repeat.
    """
    started = time.perf_counter()
    present = [layer for layer in layers if _exists(conn, layer.live)]
    if not present:
        return ChangeReport(dataset, load_id, True, (), time.perf_counter() - started)
    found = tuple(_layer(conn, layer) for layer in present)
    return ChangeReport(dataset, load_id, False, found, time.perf_counter() - started)


def _layer(conn: psycopg.Connection, layer: Compared) -> LayerChanges:
    old = sql.Identifier(*layer.live.split(".", 1))
    new = sql.Identifier(*layer.staging.split(".", 1))
    key = sql.Identifier(layer.key)
    return LayerChanges(layer.live, added=_missing(conn, new, old, key),
                        removed=_missing(conn, old, new, key),
                        renamed=_renamed(conn, old, new, key, layer.names),
                        reshaped=_reshaped(conn, old, new, key))


def _missing(conn: psycopg.Connection, here: sql.Composable, there: sql.Composable,
             key: sql.Identifier) -> tuple[str, ...]:
    """Keys in ``here`` that ``there`` lacks."""
    rows = conn.execute(sql.SQL(
        "SELECT DISTINCT h.{k}::text FROM {here} h WHERE h.{k} IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM {there} t WHERE t.{k} = h.{k}) ORDER BY 1").format(
        k=key, here=here, there=there)).fetchall()
    return tuple(r[0] for r in rows)


def _renamed(conn: psycopg.Connection, old: sql.Composable, new: sql.Composable,
             key: sql.Identifier, names: Sequence[str]) -> tuple[Renamed, ...]:
    if not names:
        return ()
    differs = sql.SQL(" OR ").join(
        sql.SQL("o.{f} IS DISTINCT FROM n.{f}").format(f=sql.Identifier(f)) for f in names)
    pairs = sql.SQL(", ").join(
        sql.SQL("o.{f}::text, n.{f}::text").format(f=sql.Identifier(f)) for f in names)
    rows = conn.execute(sql.SQL(
        "SELECT o.{k}::text, {pairs} FROM {old} o JOIN {new} n ON n.{k} = o.{k} "
        "WHERE {differs} ORDER BY 1").format(k=key, pairs=pairs, old=old, new=new,
                                              differs=differs)).fetchall()
    out = []
    for row in rows:
        values = row[1:]
        fields = {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(names)
                  if values[2 * i] != values[2 * i + 1]}
        out.append(Renamed(row[0], fields))
    return tuple(out)


def _reshaped(conn: psycopg.Connection, old: sql.Composable, new: sql.Composable,
              key: sql.Identifier) -> tuple[Reshaped, ...]:
    rows = conn.execute(sql.SQL(
        "SELECT o.{k}::text, ST_Area(o.geom::geography) / {km2}, "
        "       ST_Area(n.geom::geography) / {km2}, "
        "       ST_Area(ST_SymDifference(o.geom, n.geom)::geography) / {km2} "
        "FROM {old} o JOIN {new} n ON n.{k} = o.{k} "
        "WHERE NOT (o.geom IS NULL AND n.geom IS NULL) "
        "  AND (o.geom IS NULL OR n.geom IS NULL OR NOT o.geom = n.geom) ORDER BY 1").format(
        k=key, km2=sql.Literal(_KM2), old=old, new=new)).fetchall()
    return tuple(Reshaped(*row) for row in rows)


def _exists(conn: psycopg.Connection, table: str) -> bool:
    name = sql.Identifier(*table.split(".", 1)).as_string(conn)
    row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    return row is not None and row[0] is not None
