"""load_chunk: read one fid range, repair it and COPY it into the staging table.

Exactly-once effect under at-least-once delivery: the chunk's ledger row is
locked ``FOR UPDATE`` for the whole COPY and marked loaded in the same
transaction. A duplicate waits for the lock and then finds the chunk loaded; a
worker killed mid-COPY rolls everything back and the redelivery redoes it.

One bad feature never sinks a load: a geometry that can't be loaded faithfully
(malformed WKB, no polygonal part even after ``make_valid``, outside lon/lat) keeps
its row with ``geom`` NULL, and its fid and key are recorded on the chunk's ledger
row in that same transaction. A strict load fails on it instead.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc

from service import ledger
from service.data_warnings import MAX_LISTED, DroppedFeature
from service.errors import BadMessage, BadSource, GeoloadError
from service.fetch import LocalCopy, fetch
from service.live import Live
from service.load import budget
from service.load.columns import Column, ColumnPlan
from service.load.copy import Copier
from service.messages import FINISH, Next
from service.read import BATCH_ROWS, LayerInfo, batches
from service.repair import Repaired, repair
from service.settings import Settings
from service.steps import Outcome, check_ids, load_context, refused_data, skipped
from service.throttle import Every

#: A B-tree entry holds at most 2704 bytes (a third of an 8 kB page, less headers). A longer
#: key or join value would fail the index build after every chunk was loaded, so it fails
#: here instead, naming its fid.
INDEX_MAX_BYTES = 2600
#: Geometry bytes read, repaired and copied at once within a chunk.
BATCH_BYTES = 2_000_000
#: Seconds between a chunk's progress reports while it loads (the dashboard's features).
PROGRESS_INTERVAL_S = 0.25


def load_chunk(settings: Settings, live: Live, run_id: str, dataset: str, layer: str,
               chunk_no: int) -> Outcome:
    ds = check_ids(run_id, dataset, ("layer", layer, str), ("chunk_no", chunk_no, int))
    spec = ds.layer(layer)
    ids: dict[str, Any] = dict(run_id=run_id, dataset=dataset, layer=layer, chunk_no=chunk_no)
    with load_context(settings, run_id, dataset) as (conn, load):
        if load.finished:
            return skipped(f"load is {load.status}", **ids)
        plan = ledger.layer_row(conn, load.load_id, layer)
        chunk = ledger.chunk_row(conn, load.load_id, layer, chunk_no)
        if plan is None or chunk is None:
            raise BadMessage(f"no chunk {chunk_no} of layer {layer!r} in run {run_id!r}",
                             dataset=dataset, hint="discard the message")
        if chunk["status"] == "loaded":
            return _already_loaded(plan, ids)
        ledger.start_attempt(conn, load.load_id, layer, chunk_no)
        local = fetch(ds, settings, pinned_sha256=load.sha256)
        started = time.perf_counter()
        with budget.for_process(settings.inflight_bytes).hold(chunk["weight"]), \
                conn.transaction():
            chunk = ledger.chunk_row(conn, load.load_id, layer, chunk_no, lock=True)
            assert chunk is not None
            if chunk["status"] == "loaded":
                return _already_loaded(plan, ids)
            with _about(dataset, local), refused_data(dataset, f"layer {layer!r} chunk {chunk_no}"):
                counts = _copy_chunk(conn, live, local, plan, chunk, ids,
                                     {spec.key, *spec.indexes},
                                     _Unloadable(load.strict, spec.feature_key))
            done, total = ledger.complete_chunk(conn, load.load_id, layer, chunk_no, counts,
                                                time.perf_counter() - started)
    live.chunk_progress(run_id, dataset, layer, chunk_no, counts.loaded)
    follow = [Next(FINISH, (run_id, dataset, layer))] if done == total else []
    return Outcome({"status": "loaded", **ids, "features": counts.loaded,
                    "repaired": counts.repaired, "empty": counts.empty,
                    "dropped": counts.dropped,
                    "seconds": round(time.perf_counter() - started, 3), "stages": counts.stages,
                    "worker": ledger.worker_id()}, follow)


def _already_loaded(plan: dict[str, Any], ids: dict[str, Any]) -> Outcome:
    """A duplicate: re-send the layer's next step in case the first delivery died before."""
    done = plan["chunks_done"] == plan["chunks_total"] and plan["status"] == "loading"
    follow = [Next(FINISH, (ids["run_id"], ids["dataset"], ids["layer"]))] if done else []
    return Outcome({"status": "skipped", "reason": "chunk already loaded", **ids}, follow)


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


@contextmanager
def _about(dataset: str, local: LocalCopy) -> Iterator[None]:
    """Whatever fails while a chunk is copied names the dataset and the file it came from."""
    try:
        yield
    except GeoloadError as exc:
        exc.where(dataset=dataset, file=local.path.name)
        raise


def _copy_chunk(conn: Any, live: Live, local: LocalCopy, plan: dict[str, Any],
                chunk: dict[str, Any], ids: dict[str, Any],
                indexed: Collection[str], unloadable: "_Unloadable") -> ledger.ChunkCounts:
    columns = [Column(**c) for c in plan["columns"]]
    info = LayerInfo(name=plan["layer"], driver=plan["driver"], count=plan["source_count"],
                     fields=(), geometry_type="", crs=None, fid_column=plan["fid_column"])
    sources = ColumnPlan(columns).sources
    key_source = next((c.source for c in columns if unloadable.feature_key
                       and c.name == unloadable.feature_key.lower()), None)
    tally = _Tally()
    report = Every(PROGRESS_INTERVAL_S)
    with conn.cursor() as cur, Copier(cur, plan["staging_table"], columns) as copier:
        clock = time.perf_counter()
        for read in batches(local.path, info, chunk["fid_first"], chunk["fid_last"], sources,
                            batch_rows=batch_rows(chunk["features"], chunk["weight"]),
                            expected=chunk["features"]):
            clock = tally.timed("read", clock)
            batch = read.attributes
            _refuse_unindexable(batch, columns, indexed, ids)
            fixed = repair(read.wkb, read.wkb_bytes)
            del read
            unloadable.handle(fixed, batch, key_source, tally, ids)
            clock = tally.timed("repair", clock)
            copier.write(batch, fixed.wkb)
            clock = tally.timed("copy", clock)
            tally.loaded += batch.num_rows
            tally.empty += fixed.empty
            tally.repaired += fixed.repaired
            tally.parts_dropped += fixed.parts_dropped
            if report.due():
                live.chunk_progress(ids["run_id"], ids["dataset"], ids["layer"],
                                    ids["chunk_no"], tally.loaded)
            clock = time.perf_counter()
    tally.timed("copy", clock)  # the server finishing the COPY
    if tally.loaded != chunk["features"]:
        raise BadSource(f"layer {ids['layer']!r} fids {chunk['fid_first']}..{chunk['fid_last']}: "
                        f"read {tally.loaded} features, planned {chunk['features']}",
                        dataset=ids["dataset"], file=local.path.name,
                        hint="the cached file changed under the run; clear GEOLOAD_CACHE_DIR and "
                             "enqueue again")
    return ledger.ChunkCounts(tally.loaded, tally.empty, tally.repaired, tally.parts_dropped,
                              {k: round(v, 3) for k, v in tally.seconds.items()},
                              tally.dropped, tally.dropped_features)


def batch_rows(features: int, weight: int) -> int:
    """Rows per read batch, so that a batch holds about :data:`BATCH_BYTES` of geometry.

    A chunk's geometry is copied a few times on its way (Arrow, bytes, GEOS, the COPY
    encoding); in batches, those copies are a batch's size, not the chunk's.
    """
    return max(1, min(BATCH_ROWS, features * BATCH_BYTES // max(weight, 1)))


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


@dataclass(frozen=True)
class _Unloadable:
    """What a load does with geometries it can't load faithfully.

    By default their rows are kept with ``geom`` NULL, so that one bad feature never
    sinks a load of 400,000, and they are counted and listed (fid and ``feature_key``,
    the first :data:`MAX_LISTED` per chunk) as a warning. A strict load fails on them,
    naming their fids. (GDAL 3.6's ``ogr2ogr -makevalid`` aborts the whole layer.)
    """

    strict: bool
    feature_key: str | None

    def handle(self, fixed: Repaired, batch: Any, key_source: str | None, tally: _Tally,
               ids: dict[str, Any]) -> None:
        fids = batch.column("__fid").to_numpy()
        for kind in UNLOADABLE:
            rows = getattr(fixed, kind.repaired_field)
            if not len(rows):
                continue
            if self.strict:
                shown = ", ".join(str(int(f)) for f in fids[rows[:10]])
                raise BadSource(f"layer {ids['layer']!r}: {len(rows)} feature(s) has "
                                f"{kind.problem} (fid {shown})", hint=kind.hint)
            fixed.wkb[rows] = None
            tally.dropped += len(rows)
            room = max(MAX_LISTED - len(tally.dropped_features), 0)
            keys = batch.column(key_source) if key_source else None
            tally.dropped_features += [DroppedFeature(int(fids[row]), _key(keys, int(row)),
                                                      kind.problem) for row in rows[:room]]


def _key(keys: Any, row: int) -> str | None:
    value = None if keys is None else keys[row].as_py()
    return None if value is None else str(value)


def _refuse_unindexable(batch: Any, columns: list[Column], indexed: Collection[str],
                        ids: dict[str, Any]) -> None:
    """A key or join value too long for a B-tree fails the dataset, naming its fid."""
    for column in columns:
        if column.name not in indexed or column.type != "text" or column.source is None:
            continue
        lengths = pc.binary_length(batch.column(column.source))
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > INDEX_MAX_BYTES:
            fid = batch.column("__fid")[pc.index(lengths, longest).as_py()].as_py()
            raise BadSource(f"layer {ids['layer']!r}: field {column.source!r} of fid {fid} is "
                            f"{longest:,} bytes long; PostgreSQL can't index values over "
                            f"{INDEX_MAX_BYTES:,} bytes",
                            hint="a key or join value this long is a data error; report it "
                                 "upstream")
