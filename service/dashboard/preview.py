"""A map preview of a published layer: an SVG drawn by PostGIS, small whatever the table.

At most :data:`MAX_FEATURES` features, sampled evenly over the table with a
repeatable seed, each simplified to about a pixel of an 800-pixel-wide map, so
a 150,000-feature GADM level costs as little as 400 time zones. Longitude and
latitude are drawn as they are (plate carrée), which is enough to see that the
data landed where expected. Drawings are cached per published load.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from html import escape

import psycopg
from psycopg import sql

from service.catalog import Layer
from service.load.columns import GEOMETRY_COLUMN

MAX_FEATURES = 1500
WIDTH_PX = 800
#: Reshaped and added areas, drawn over the layer (``preview.svg?changes=1``).
CHANGED = "#d62728"
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")


class Previews:
    """Cache of drawn SVGs keyed by (table, load id): a new load draws anew."""

    def __init__(self, size: int = 32) -> None:
        self._cache: OrderedDict[tuple[str, int, bool], bytes] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, conn: psycopg.Connection, layer: Layer, load_id: int,
            changed: Sequence[str] = (), key_column: str | None = None) -> bytes | None:
        """``changed``: keys (in ``key_column``) drawn over the layer, in red."""
        key = (layer.table, load_id, bool(changed))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        svg = draw(conn, layer, changed, key_column)
        if svg is not None:
            with self._lock:
                self._cache[key] = svg
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return svg


def draw(conn: psycopg.Connection, layer: Layer, changed: Sequence[str] = (),
         key_column: str | None = None) -> bytes | None:
    """The layer as SVG, or None when its table does not exist; the features whose
    ``key_column`` is in ``changed`` (at most :data:`MAX_FEATURES`) drawn over it."""
    table = sql.Identifier(layer.schema, layer.table_name)
    if conn.execute("SELECT to_regclass(%s)", (layer.table,)).fetchone() == (None,):
        return None
    count, box = _size(conn, layer, table)
    key = sql.Identifier(key_column or layer.key)
    zoom = _extent(conn, table, key, changed) if changed else None
    box = zoom or box
    if box is None:
        return _svg((-180.0, -90.0, 360.0, 180.0), [], count, 0)
    xmin, ymin, xmax, ymax = box
    width, height = max(xmax - xmin, 1e-6), max(ymax - ymin, 1e-6)
    tolerance = max(width, height) / WIDTH_PX
    digits = max(0, math.ceil(-math.log10(tolerance)) + 1)
    percent = 100.0 if zoom else min(100.0, 100.0 * MAX_FEATURES * 1.2 / max(count, 1))
    rows = conn.execute(sql.SQL(
        "SELECT {key}::text, ST_AsSVG(ST_SimplifyPreserveTopology({geom}, %s), 0, %s) "
        "FROM {table} TABLESAMPLE BERNOULLI (%s) REPEATABLE (42) "
        "WHERE NOT ST_IsEmpty({geom}) AND {geom} && ST_MakeEnvelope(%s, %s, %s, %s, 4326) "
        "LIMIT %s").format(
            key=sql.Identifier(layer.key), geom=sql.Identifier(GEOMETRY_COLUMN), table=table),
        (tolerance, digits, percent, *box, MAX_FEATURES)).fetchall()
    marked = conn.execute(sql.SQL(
        "SELECT {key}::text, ST_AsSVG(ST_SimplifyPreserveTopology({geom}, %s), 0, %s) "
        "FROM {table} WHERE {key}::text = ANY(%s) LIMIT %s").format(
            key=key, geom=sql.Identifier(GEOMETRY_COLUMN), table=table),
        (tolerance, digits, list(changed), MAX_FEATURES)).fetchall() if changed else []
    pad = max(width, height) * 0.01
    view = (xmin - pad, -ymax - pad, width + 2 * pad, height + 2 * pad)
    return _svg(view, [(str(k), str(d)) for k, d in rows if d], count, len(rows),
                [(str(k), str(d)) for k, d in marked if d])


def _extent(conn: psycopg.Connection, table: sql.Composable, key: sql.Composable,
            changed: Sequence[str]) -> tuple[float, float, float, float] | None:
    """The changed features' extent, widened by a quarter each way so their neighbours
    show: a map of the world would draw an enclave smaller than a pixel."""
    row = conn.execute(sql.SQL(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent({geom}) "
        "AS e FROM {table} WHERE {key}::text = ANY(%s)) s").format(
            geom=sql.Identifier(GEOMETRY_COLUMN), table=table, key=key),
        (list(changed),)).fetchone()
    if row is None or row[0] is None:
        return None
    xmin, ymin, xmax, ymax = (float(v) for v in row)
    dx, dy = (xmax - xmin) / 4, (ymax - ymin) / 4
    return (max(xmin - dx, -180.0), max(ymin - dy, -90.0), min(xmax + dx, 180.0),
            min(ymax + dy, 90.0))


def _size(conn: psycopg.Connection, layer: Layer, table: sql.Composable
          ) -> tuple[int, tuple[float, float, float, float] | None]:
    """Row count and extent: the planner's estimates when ANALYZE has run, else exact."""
    estimate = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                            (layer.table,)).fetchone()
    count = int(estimate[0]) if estimate and estimate[0] and estimate[0] > 0 else -1
    box = None
    if count > 0:
        try:
            box = conn.execute(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "ST_EstimatedExtent(%s, %s, %s) AS e",
                (layer.schema, layer.table_name, GEOMETRY_COLUMN)).fetchone()
        except psycopg.Error:
            box = None
    if count < 0 or box is None or box[0] is None:
        row = conn.execute(sql.SQL(
            "SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT count(*) AS n, ST_Extent({geom}) AS e FROM {table}) s").format(
                geom=sql.Identifier(GEOMETRY_COLUMN), table=table)).fetchone()
        count = int(row[0]) if row else 0
        box = row[1:] if row else None
    if box is None or box[0] is None:
        return count, None
    return count, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _svg(view: tuple[float, float, float, float], paths: list[tuple[str, str]], total: int,
         shown: int, marked: Sequence[tuple[str, str]] = ()) -> bytes:
    x, y, w, h = view
    height_px = max(120, min(600, round(WIDTH_PX * h / w)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x:.6g} {y:.6g} {w:.6g} {h:.6g}" '
           f'width="{WIDTH_PX}" height="{height_px}" preserveAspectRatio="xMidYMid meet" '
           f'data-features="{shown}" data-total="{total}" data-changed="{len(marked)}">',
           f"<title>{shown} of {total} features</title>",
           f'<rect x="{x:.6g}" y="{y:.6g}" width="{w:.6g}" height="{h:.6g}" fill="#f4f7fb"/>']
    for n, (key, d) in enumerate(paths):
        out.append(f'<path d="{escape(d)}" fill="{PALETTE[n % len(PALETTE)]}" '
                   'fill-opacity="0.55" fill-rule="evenodd" stroke="#333" stroke-width="0.6" '
                   f'vector-effect="non-scaling-stroke"><title>{escape(key)}</title></path>')
    for key, d in marked:
        out.append(f'<path d="{escape(d)}" fill="{CHANGED}" fill-opacity="0.85" '
                   'fill-rule="evenodd" stroke="#7f0000" stroke-width="1.5" '
                   f'vector-effect="non-scaling-stroke" class="changed"><title>changed: '
                   f'{escape(key)}</title></path>')
    out.append("</svg>")
    return "\n".join(out).encode()
