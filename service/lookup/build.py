"""Build a dataset's lookup table from its staging tables, inside the publish transaction.

World polygons are slow to test a point against: one time zone holds over a million
vertices, and its bounding box covers half an ocean. :mod:`~service.lookup.subdivide`
(``ST_Subdivide``'s cut, 20 times faster here) cuts every polygon into pieces of at
most ``max_vertices`` vertices, each with a tight box, so a point costs one GiST probe
and a point-in-polygon test on a few hundred vertices.

The table is built from the staging tables the publish is about to swap in, under the
name it will be swapped in as (the caller picks a staging name and swaps it with the
data tables in one transaction), so a reader never sees lookup pieces of one version
beside data tables of another. Its comment (:data:`~service.lookup.model.COMMENT_PREFIX`
and JSON) registers it: lookup finds every such table outside the staging schema.

Measured on the benchmark files (``python -m devtools.bench.lookup``; timezone-like:
445 zones, 7.9 M vertices; GADM-like: 150,000 areas, 18.3 M vertices), see
:data:`DEFAULT_MAX_VERTICES`.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import shapely
from psycopg import sql

from service.load import names
from service.lookup.model import COMMENT_PREFIX, REGISTRY_SQL, BuildStats, Registered, SourceTable
from service.lookup.subdivide import Grid, Pieces, subdivide

#: Vertices per piece. Measured on the benchmark's time zones (445 zones, 7.9 M vertices),
#: 100,000 random points on one connection, grid level 8 (``python -m devtools.bench.lookup
#: --vertices 64,128,255,512``): 64 → 30,900 points/s, 128 → 42,300, 255 → 44,100,
#: 512 → 28,200. Fewer vertices make more pieces (more rows per cell to hash and test),
#: more make each point-in-polygon test longer; 255 also keeps a piece (about 4 kB) in its
#: row, stored PLAIN: no TOAST fetch per test. Before the grid, with one GiST probe per
#: point, the limit made no difference (8,600 points/s at 64 and at 255): the probe was
#: the cost.
DEFAULT_MAX_VERTICES = 255
#: Pieces lie in one cell of a 2**level × 2**level lon/lat grid (see subdivide.Grid), so a
#: batch joins them by cell. Same benchmark, 255 vertices, swept in a busy stretch (load
#: average 4.7 on 2 cores): level 6 → 13,300 points/s (67,240 pieces), 7 → 25,600 (75,555),
#: 9 → 30,100 (282,947 pieces, 213 MB); level 8 (117,728 pieces, 175 MB) measured 16,300
#: in that run and 44,100-58,300 in a quieter one. Not conclusive between 7, 8 and 9; 8 is
#: kept: well above 6, and less than half the pieces of 9.
DEFAULT_GRID_LEVEL = 8
#: Source features read per round trip while building.
READ_BATCH = 64
#: Threads cutting batches while the caller's thread COPYs.
CUTTERS = 2


def build(conn: psycopg.Connection, sources: Sequence[SourceTable], target: str, *,
          dataset: str, max_vertices: int = DEFAULT_MAX_VERTICES,
          grid_level: int = DEFAULT_GRID_LEVEL) -> BuildStats:
    """Create ``target`` (``schema.table``) holding every source's areas, subdivided.

    Idempotent: an existing ``target`` is replaced, so a redelivered publish builds it
    again. Call inside the publish transaction; nothing is visible until it commits.
    """
    if not sources:
        raise ValueError("a lookup table needs at least one source table")
    started = time.perf_counter()
    ident = sql.Identifier(*target.split(".", 1))
    create_table(conn, target, max_vertices)
    grid = Grid(grid_level)
    features = sum(_insert(conn, ident, source, max_vertices, grid) for source in sources)
    index_table(conn, target)
    register(conn, target, dataset, sources, max_vertices, grid_level)
    return _stats(conn, target, len(sources), features, max_vertices,
                  time.perf_counter() - started)


def create_table(conn: psycopg.Connection, target: str,
                 max_vertices: int = DEFAULT_MAX_VERTICES) -> None:
    """An empty lookup table (``schema.table``), replacing any of that name."""
    ident = sql.Identifier(*target.split(".", 1))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
    conn.execute(sql.SQL(
        "CREATE TABLE {} (cell integer NOT NULL, source text NOT NULL, level smallint NOT NULL, "
        "key text, name text, geom geometry(Polygon, 4326) NOT NULL)").format(ident))
    # Pieces are small: kept uncompressed in the row, a probe reads no TOAST table.
    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN geom SET STORAGE {}").format(
        ident, sql.SQL("PLAIN" if max_vertices <= 400 else "EXTERNAL")))


def index_table(conn: psycopg.Connection, target: str) -> float:
    """GiST on the pieces, B-tree on the cell, ANALYZE; returns seconds.

    Index names start with the table's (``<table>_geom_idx``), so the swap renames them
    with the table.
    """
    started = time.perf_counter()
    ident = sql.Identifier(*target.split(".", 1))
    table = target.split(".", 1)[1]
    geom_idx, cell_idx = (names.index_name(table, role) for role in names.LOOKUP_INDEX_ROLES)
    conn.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(
        sql.Identifier(geom_idx), ident))
    conn.execute(sql.SQL("CREATE INDEX {} ON {} (cell)").format(
        sql.Identifier(cell_idx), ident))
    conn.execute(sql.SQL("ANALYZE {}").format(ident))
    return time.perf_counter() - started


def register(conn: psycopg.Connection, target: str, dataset: str,
             sources: Sequence[SourceTable], max_vertices: int,
             grid_level: int = DEFAULT_GRID_LEVEL) -> Registered:
    """Write the comment that makes ``target`` a lookup table (it moves with a rename)."""
    entry = Registered(target, dataset, max_vertices,
                       {s.publishes_as: (s.level, *s.labels) for s in sources}, grid_level)
    text = COMMENT_PREFIX + json.dumps(entry.to_json(), ensure_ascii=False)
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(
        sql.Identifier(*target.split(".", 1)), sql.Literal(text)))
    return entry


def registered(conn: psycopg.Connection) -> list[Registered]:
    """Every published lookup table (the staging schema's are not yet anyone's)."""
    rows = conn.execute(REGISTRY_SQL).fetchall()  # type: ignore[arg-type]
    return [Registered.from_json(table, json.loads(meta)) for table, meta in rows]


def _insert(conn: psycopg.Connection, target: sql.Composable, source: SourceTable,
            max_vertices: int, grid: Grid) -> int:
    """Cut one source's polygons into pieces and COPY them in; returns its feature count.

    Features are read :data:`READ_BATCH` at a time through a server-side cursor and cut
    by :data:`CUTTERS` threads (GEOS releases the GIL) while this one COPYs the batch
    before: memory holds a few batches (the largest time zone is 22 MB of WKB), not the
    table.
    """
    name = sql.Identifier(source.name) if source.name else sql.SQL("NULL")
    features = 0
    with conn.cursor(name=f"geoload_lookup_{source.level}") as rows, \
            conn.cursor() as out, ThreadPoolExecutor(CUTTERS) as cutters:
        table = sql.Identifier(*source.table.split(".", 1))
        rows.execute(sql.SQL("SELECT {key}::text, {name}::text, ST_AsBinary(geom) FROM {table} "
                             "WHERE geom IS NOT NULL").format(
            key=sql.Identifier(source.key), name=name, table=table))
        cutting: deque[tuple[list[Row], Future[Pieces]]] = deque()
        while batch := rows.fetchmany(READ_BATCH):
            features += len(batch)
            cutting.append((batch, cutters.submit(_cut, batch, max_vertices, grid)))
            if len(cutting) > CUTTERS:
                _copy_pieces(out, target, source, *_next(cutting))
        while cutting:
            _copy_pieces(out, target, source, *_next(cutting))
    return features


Row = tuple[str, "str | None", bytes]


def _cut(batch: list[Row], max_vertices: int, grid: Grid) -> Pieces:
    return subdivide(shapely.from_wkb([row[2] for row in batch]), max_vertices, grid)


def _next(cutting: deque[tuple[list[Row], Future[Pieces]]]) -> tuple[list[Row], Pieces]:
    batch, future = cutting.popleft()
    return batch, future.result()


def _copy_pieces(cur: psycopg.Cursor, target: sql.Composable, source: SourceTable,
                 batch: list[Row], pieces: Pieces) -> None:
    keys = [batch[owner][0] for owner in pieces.owner.tolist()]
    labels = [batch[owner][1] for owner in pieces.owner.tolist()]
    copy_rows(cur, target, source, pieces, keys, labels)


def copy_rows(cur: psycopg.Cursor, target: sql.Composable, source: SourceTable, pieces: Pieces,
              keys: Sequence[str | None], labels: Sequence[str | None]) -> None:
    """Binary COPY of ``pieces`` into a lookup table, each with its area's key and name."""
    copy_wkb(cur, target, source, pieces.cell.tolist(), shapely.to_wkb(pieces.geoms).tolist(),
             keys, labels)


def copy_wkb(cur: psycopg.Cursor, target: sql.Composable, source: SourceTable,
             cells: Sequence[int], wkb: Sequence[bytes], keys: Sequence[str | None],
             labels: Sequence[str | None]) -> None:
    """:func:`copy_rows` of pieces already WKB (a chunk keeps them so: GEOS geometries take
    several times the memory)."""
    with cur.copy(sql.SQL("COPY {} (cell, source, level, key, name, geom) FROM STDIN "
                          "(FORMAT binary)").format(target)) as copy:
        copy.set_types(["int4", "text", "int2", "text", "text", "bytea"])
        for cell, key, label, geom in zip(cells, keys, labels, wkb):
            copy.write_row((cell, source.publishes_as, source.level, key, label, geom))


def _stats(conn: psycopg.Connection, target: str, sources: int, features: int,
           max_vertices: int, seconds: float) -> BuildStats:
    pieces, table_bytes, index_bytes = sizes(conn, target)
    return BuildStats(target, sources, features, pieces, max_vertices, seconds, table_bytes,
                      index_bytes)


def sizes(conn: psycopg.Connection, target: str) -> tuple[int, int, int]:
    """A lookup table's pieces, table bytes and index bytes."""
    ident = sql.Identifier(*target.split(".", 1))
    regclass = sql.Literal(ident.as_string(conn))
    row = conn.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {}), pg_table_size({r}::regclass), "
        "pg_indexes_size({r}::regclass)").format(ident, r=regclass)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])
