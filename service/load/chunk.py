"""Copy one chunk: read its fid range, repair its geometries, COPY it into the staging table.

One bad feature never sinks a load: a geometry that can't be loaded faithfully
(malformed WKB, no polygonal part even after ``make_valid``, outside lon/lat) keeps
its row with ``geom`` NULL, and its fid and key are listed in the counts; a strict
load fails on it instead (:class:`Unloadable`).

The caller owns the transaction (the pipeline's ``load_chunk`` step locks the chunk's
ledger row for the whole COPY) and the memory budget; this knows neither the ledger
nor any message.

>>> counts = copy_chunk(conn, local.path, plan, chunk, Unloadable(strict=False,
...                     feature_key="GID_2"), indexed={"gid_2", "gid_1"})
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psycopg
import pyarrow.compute as pc

from service.data_warnings import MAX_LISTED, DroppedFeature
from service.errors import BadSource
from service.load.columns import Column, ColumnPlan
from service.load.copy import Copier
from service.load.records import Chunk, ChunkCounts, LayerPlan
from service.read import BATCH_ROWS, batches
from service.repair import Repaired, repair
from service.throttle import Every

#: A B-tree entry holds at most 2704 bytes (a third of an 8 kB page, less headers). A longer
#: key or join value would fail the index build after every chunk was loaded, so it fails
#: here instead, naming its fid.
INDEX_MAX_BYTES = 2600
#: Geometry bytes read, repaired and copied at once within a chunk.
BATCH_BYTES = 2_000_000
#: Seconds between a chunk's progress reports while it loads (the dashboard's features).
PROGRESS_INTERVAL_S = 0.25

#: Told the features loaded so far, at most every :data:`PROGRESS_INTERVAL_S`.
Progress = Callable[[int], None]


class BatchSink(Protocol):
    """Also given each repaired batch, and written in the chunk's transaction after its
    rows (the lookup's :class:`~service.lookup.pieces.ChunkPieces`)."""

    def add(self, batch: Any, wkb: np.ndarray) -> None: ...

    def write(self, conn: psycopg.Connection) -> float: ...


@dataclass(frozen=True)
class _Problem:
    """A kind of geometry that can't be loaded faithfully: the :class:`Repaired` field
    listing its rows, what it is called, and what to do about it."""

    repaired_field: str
    problem: str
    hint: str


UNLOADABLE = (
    _Problem("malformed", "malformed WKB", "the file is damaged; report it upstream"),
    _Problem("unrepairable", "no polygonal part even after make_valid",
             "the source holds points/lines or collapsed rings; report it upstream"),
    _Problem("out_of_bounds", "coordinates outside EPSG:4326 bounds",
             "the data is not lon/lat; check the source's CRS"),
)


@dataclass
class _Tally:
    loaded: int = 0
    empty: int = 0
    repaired: int = 0
    parts_dropped: int = 0
    dropped: int = 0
    dropped_features: list[DroppedFeature] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("read", "repair", "copy"), 0.0))

    def timed(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - started
        return now

    def add(self, rows: int, fixed: Repaired) -> None:
        self.loaded += rows
        self.empty += fixed.empty
        self.repaired += fixed.repaired
        self.parts_dropped += fixed.parts_dropped

    def counts(self) -> ChunkCounts:
        return ChunkCounts(self.loaded, self.empty, self.repaired, self.parts_dropped,
                           {k: round(v, 3) for k, v in self.seconds.items()},
                           self.dropped, self.dropped_features)


@dataclass(frozen=True)
class Unloadable:
    """What a load does with geometries it can't load faithfully.

    By default their rows are kept with ``geom`` NULL, so that one bad feature never
    sinks a load of 400,000, and they are counted and listed (fid and ``feature_key``,
    the first :data:`MAX_LISTED` per chunk) as a warning. A strict load fails on them,
    naming their fids. (GDAL 3.6's ``ogr2ogr -makevalid`` aborts the whole layer.)
    """

    strict: bool
    feature_key: str | None

    def handle(self, fixed: Repaired, batch: Any, key_source: str | None, tally: _Tally,
               layer: str) -> None:
        fids = batch.column("__fid").to_numpy()
        for kind in UNLOADABLE:
            rows = getattr(fixed, kind.repaired_field)
            if not len(rows):
                continue
            if self.strict:
                shown = ", ".join(str(int(f)) for f in fids[rows[:10]])
                raise BadSource(f"layer {layer!r}: {len(rows)} feature(s) has "
                                f"{kind.problem} (fid {shown})", hint=kind.hint)
            fixed.wkb[rows] = None
            tally.dropped += len(rows)
            room = max(MAX_LISTED - len(tally.dropped_features), 0)
            keys = batch.column(key_source) if key_source else None
            tally.dropped_features += [DroppedFeature(int(fids[row]), _key(keys, int(row)),
                                                      kind.problem) for row in rows[:room]]

    def key_source(self, columns: list[Column]) -> str | None:
        """The source field that holds the feature key, to name a dropped feature by."""
        return next((c.source for c in columns if self.feature_key
                     and c.name == self.feature_key.lower()), None)


def copy_chunk(conn: psycopg.Connection, path: Path, plan: LayerPlan, chunk: Chunk,
               unloadable: Unloadable, *, indexed: Collection[str],
               progress: Progress | None = None, source_layer: str | None = None,
               also: BatchSink | None = None) -> ChunkCounts:
    """COPY the chunk's features of the file ``path`` into the layer's staging table, in
    batches of about :data:`BATCH_BYTES` of geometry; returns what it took.

    ``source_layer``: the layer's name in the file, where it differs from the catalog's.
    ``also`` is given every repaired batch and written after the rows (stage ``also``)."""
    columns = plan.columns
    sources = ColumnPlan(columns).sources
    key_source = unloadable.key_source(columns)
    tally = _Tally()
    report = Every(PROGRESS_INTERVAL_S)
    with conn.cursor() as cur, Copier(cur, plan.staging_table, columns) as copier:
        clock = time.perf_counter()
        for read in batches(path, source_layer or plan.layer, chunk.fid_first, chunk.fid_last,
                            sources,
                            driver=plan.driver, fid_column=plan.fid_column,
                            batch_rows=batch_rows(chunk.features, chunk.weight),
                            expected=chunk.features):
            clock = tally.timed("read", clock)
            batch = read.attributes
            _refuse_unindexable(batch, columns, indexed, plan.layer)
            fixed = repair(read.wkb, read.wkb_bytes)
            del read
            unloadable.handle(fixed, batch, key_source, tally, plan.layer)
            clock = tally.timed("repair", clock)
            copier.write(batch, fixed.wkb)
            if also is not None:
                also.add(batch, fixed.wkb)
            clock = tally.timed("copy", clock)
            tally.add(batch.num_rows, fixed)
            if progress is not None and report.due():
                progress(tally.loaded)
            clock = time.perf_counter()
    tally.timed("copy", clock)  # the server finishing the COPY
    if also is not None:
        tally.seconds["also"] = also.write(conn)
    _check_all_read(tally.loaded, plan.layer, chunk, path)
    return tally.counts()


def _check_all_read(loaded: int, layer: str, chunk: Chunk, path: Path) -> None:
    if loaded != chunk.features:
        raise BadSource(f"layer {layer!r} fids {chunk.fid_first}..{chunk.fid_last}: "
                        f"read {loaded} features, planned {chunk.features}", file=path.name,
                        hint="the cached file changed under the run; clear GEOLOAD_CACHE_DIR and "
                             "enqueue again")


def batch_rows(features: int, weight: int) -> int:
    """Rows per read batch, so that a batch holds about :data:`BATCH_BYTES` of geometry.

    A chunk's geometry is copied a few times on its way (Arrow, bytes, GEOS, the COPY
    encoding); in batches, those copies are a batch's size, not the chunk's.
    """
    return max(1, min(BATCH_ROWS, features * BATCH_BYTES // max(weight, 1)))


def _key(keys: Any, row: int) -> str | None:
    value = None if keys is None else keys[row].as_py()
    return None if value is None else str(value)


def _refuse_unindexable(batch: Any, columns: list[Column], indexed: Collection[str],
                        layer: str) -> None:
    """A key or join value too long for a B-tree fails the dataset, naming its fid."""
    for column in columns:
        if column.name not in indexed or column.type != "text" or column.source is None:
            continue
        lengths = pc.binary_length(batch.column(column.source))
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > INDEX_MAX_BYTES:
            fid = batch.column("__fid")[pc.index(lengths, longest).as_py()].as_py()
            raise BadSource(f"layer {layer!r}: field {column.source!r} of fid {fid} is "
                            f"{longest:,} bytes long; PostgreSQL can't index values over "
                            f"{INDEX_MAX_BYTES:,} bytes",
                            hint="a key or join value this long is a data error; report it "
                                 "upstream")
