"""A chunk's lookup pieces, cut while the chunk loads and written in its transaction.

Building a lookup table at publish cost 1.6-2.6 times the load (measured on the
benchmark files): too slow inside the swap. So each chunk cuts its own features into
pieces as it loads them, from the repaired WKB already in memory, and COPYs them into its
dataset's staging lookup table in the same transaction as its rows: a redelivered chunk
that finds itself loaded adds nothing, one that died added nothing. The finish step then
only indexes the table, and the publish swaps it in with the data tables.

Cutting runs in a thread (GEOS releases the GIL) while the chunk reads and COPYs its next
batch; the pieces wait in memory, as WKB, until the chunk's own COPY is done (one
connection holds one COPY at a time): about as many bytes as the chunk's geometries.
Memory, world-size GADM (``python -m devtools.bench.scale --size world --workers 2``),
peak RSS of the two workers: 396 / 381 MB with pieces kept as GEOS geometries and a
cutter thread per chunk, 386 / 372 MB kept as WKB, 374 / 364 MB with the process's shared
cutters (one run each, busy machine); 372-403 MB in three quiet runs; 359 / 358 and
362 / 356 MB once each batch is cut in slices of :data:`SLICE_BYTES`; 236-259 MB was
measured without lookup tables.

>>> with ChunkPieces("geoload_staging.timezone__timezone_lookup__l7", source, columns) as cut:
...     copy_chunk(conn, path, plan, chunk, unloadable, indexed=..., pieces=cut)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql

from service.catalog.model import Dataset
from service.load.columns import Column
from service.load.names import STAGING
from service.lookup import catalog
from service.lookup.build import DEFAULT_GRID_LEVEL, DEFAULT_MAX_VERTICES, copy_wkb
from service.lookup.model import SourceTable
from service.lookup.subdivide import Grid, subdivide

#: A batch's pieces as the COPY takes them: cells, WKB, keys, names.
_Cut = tuple[list[int], list[bytes], list[Any], list[Any]]


def for_layer(dataset: Dataset, lookup_staging: str, live: str,
              staging: str) -> tuple[str, SourceTable]:
    """The qualified lookup table and the source of one layer's pieces (``live`` table,
    loaded into ``staging``)."""
    [source] = catalog.sources(dataset, {live: staging})
    return f"{STAGING}.{lookup_staging}", source


#: Threads of this process that cut pieces, shared by its chunks (rather than a thread
#: per chunk: fewer threads, each with its malloc arena).
CUTTERS = 2
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _cutters() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CUTTERS, thread_name_prefix="lookup-cut")
        return _pool


class ChunkPieces:
    """Collects one chunk's pieces, batch by batch (:meth:`add`), then COPYs them
    (:meth:`write`). ``source`` says which live table and level they answer for;
    ``columns`` map its key and name columns to the batch's source fields."""

    def __init__(self, target: str, source: SourceTable, columns: Sequence[Column], *,
                 max_vertices: int = DEFAULT_MAX_VERTICES,
                 grid_level: int = DEFAULT_GRID_LEVEL) -> None:
        fields = {c.name: c.source for c in columns}
        self.target = target
        self.source = source
        self._key = fields.get(source.key)
        self._name = fields.get(source.name) if source.name else None
        self._max_vertices = max_vertices
        self._grid = Grid(grid_level)
        self._cuts: list[Future[_Cut]] = []

    def __enter__(self) -> ChunkPieces:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for future in self._cuts:  # a chunk that failed: its pieces are not wanted
            future.cancel()
        wait(self._cuts)

    def add(self, batch: Any, wkb: np.ndarray) -> None:
        """Cut a batch's geometries (None where a feature has none) in the background."""
        keys = self._values(batch, self._key)
        labels = self._values(batch, self._name)
        self._cuts.append(_cutters().submit(self._cut, wkb, keys, labels))

    def write(self, conn: psycopg.Connection) -> float:
        """COPY every piece cut so far; returns the seconds spent waiting and writing."""
        started = time.perf_counter()
        target = sql.Identifier(*self.target.split(".", 1))
        with conn.cursor() as cur:
            for future in self._cuts:
                copy_wkb(cur, target, self.source, *future.result())
        self._cuts.clear()
        return time.perf_counter() - started

    def _cut(self, wkb: np.ndarray, keys: list[Any], labels: list[Any]) -> _Cut:
        cells: list[int] = []
        out: list[bytes] = []
        owners: list[int] = []
        for present in _slices(wkb):
            pieces = subdivide(shapely.from_wkb(wkb[present]), self._max_vertices, self._grid)
            cells += pieces.cell.tolist()
            out += shapely.to_wkb(pieces.geoms).tolist()
            owners += present[pieces.owner].tolist()
        return cells, out, [keys[i] for i in owners], [labels[i] for i in owners]

    @staticmethod
    def _values(batch: Any, field: str | None) -> list[Any]:
        if field is None:
            return [None] * batch.num_rows
        return [None if v is None else str(v) for v in batch.column(field).to_pylist()]


#: WKB bytes of a batch turned into GEOS geometries and cut at once. A batch's GEOS
#: geometries and their pieces take several times its WKB; cut whole, a batch of big
#: polygons held all of them at once beside the chunk's own.
SLICE_BYTES = 2_000_000


def _slices(wkb: np.ndarray) -> list[np.ndarray]:
    """Indices of the features that have a geometry, in runs of about :data:`SLICE_BYTES`
    of WKB (a single larger feature is a run of its own)."""
    present = np.flatnonzero([g is not None for g in wkb])
    if not len(present):
        return []
    sizes = np.cumsum([len(wkb[i]) for i in present])
    bounds = np.flatnonzero(np.diff(sizes // SLICE_BYTES)) + 1
    return np.split(present, bounds)

