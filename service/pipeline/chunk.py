"""load_chunk: copy one chunk (:func:`service.load.chunk.copy_chunk`), exactly once.

Exactly-once effect under at-least-once delivery: the chunk's ledger row is
locked ``FOR UPDATE`` for the whole COPY and marked loaded in the same
transaction, with the features it kept without geometry. A duplicate waits for
the lock and then finds the chunk loaded; a worker killed mid-COPY rolls
everything back and the redelivery redoes it. The chunk that completes its layer
sends ``finish_layer``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from service.catalog import Dataset
from service.errors import BadMessage, Cancelled, GeoloadError
from service.fetch import LocalCopy, fetch
from service.identity import worker_id
from service.ledger import chunks, layers, parts
from service.ledger.records import LayerState, Load
from service.live import Live
from service.load import budget
from service.load.chunk import Unloadable, copy_chunk
from service.lookup.pieces import ChunkPieces, for_layer
from service.pipeline.cancel import StopWhenCancelled, drop_cancelled
from service.pipeline.context import Outcome, check_ids, dataset_of, load_context, skipped
from service.pipeline.messages import FINISH, Next
from service.postgres import refused_data
from service.settings import Settings


def load_chunk(settings: Settings, live: Live, run_id: str, dataset: str, layer: str,
               chunk_no: int) -> Outcome:
    check_ids(run_id, dataset, ("layer", layer, str), ("chunk_no", chunk_no, int))
    ids: dict[str, Any] = dict(run_id=run_id, dataset=dataset, layer=layer, chunk_no=chunk_no)
    with load_context(settings, run_id, dataset) as (conn, load):
        ds = dataset_of(load)
        spec = ds.layer(layer)
        if load.finished:
            return skipped(f"load is {load.status}", **ids)
        state = layers.get(conn, load.load_id, layer)
        chunk = chunks.get(conn, load.load_id, layer, chunk_no)
        if state is None or chunk is None:
            raise BadMessage(f"no chunk {chunk_no} of layer {layer!r} in run {run_id!r}",
                             dataset=dataset, hint="discard the message")
        if chunk.loaded:
            return _already_loaded(state, ids)
        chunks.start_attempt(conn, load.load_id, layer, chunk_no)
        local = _fetch(settings, conn, load, ds, chunk.planned.part)
        started = time.perf_counter()
        watch = StopWhenCancelled(settings, load.load_id, dataset)

        def progress(n: int) -> None:
            live.chunk_progress(run_id, dataset, layer, chunk_no, n)
            watch.check()

        try:
            with budget.for_process(settings.inflight_bytes).hold(chunk.planned.weight), \
                    conn.transaction():
                chunk = chunks.get(conn, load.load_id, layer, chunk_no, lock=True)
                assert chunk is not None
                if chunk.loaded:
                    return _already_loaded(state, ids)
                where = f"layer {layer!r} chunk {chunk_no}"
                with _about(dataset, local), refused_data(dataset, where), \
                        _pieces(load.lookup_staging, ds, state) as pieces:
                    counts = copy_chunk(
                        conn, local.path, state.plan, chunk.planned,
                        Unloadable(load.strict, spec.feature_key),
                        indexed={spec.key, *spec.indexes}, progress=progress,
                        source_layer=ds.source.layer_name(layer), also=pieces)
                done, total = chunks.complete(conn, load.load_id, layer, chunk_no, counts,
                                              time.perf_counter() - started)
        except Cancelled:  # rolled back: nothing of this chunk stays
            return skipped("load was cancelled", **ids,
                           dropped=drop_cancelled(conn, load.load_id))
        finally:
            watch.close()
    live.chunk_progress(run_id, dataset, layer, chunk_no, counts.loaded)
    follow = [Next(FINISH, (run_id, dataset, layer))] if done == total else []
    return Outcome({"status": "loaded", **ids, "features": counts.loaded,
                    "repaired": counts.repaired, "empty": counts.empty,
                    "dropped": counts.dropped,
                    "seconds": round(time.perf_counter() - started, 3), "stages": counts.stages,
                    "worker": worker_id()}, follow)


def _fetch(settings: Settings, conn: psycopg.Connection, load: Load, ds: Dataset,
           part: str) -> LocalCopy:
    """The file the chunk reads: the load's one file, or its country's (``part``)."""
    if not part or load.options is None:
        return fetch(ds, settings, pinned_sha256=load.sha256)
    return fetch(load.options.part(ds, part), settings,
                 pinned_sha256=parts.pinned(conn, load.load_id).get(part))


def _already_loaded(state: LayerState, ids: dict[str, Any]) -> Outcome:
    """A duplicate: re-send the layer's next step in case the first delivery died before."""
    done = state.all_chunks_loaded and state.status == "loading"
    follow = [Next(FINISH, (ids["run_id"], ids["dataset"], ids["layer"]))] if done else []
    return Outcome({"status": "skipped", "reason": "chunk already loaded", **ids}, follow)


@contextmanager
def _pieces(table: str | None, ds: Dataset, state: LayerState) -> Iterator[ChunkPieces | None]:
    """The chunk's lookup pieces, cut into the load's staging lookup table (none for a load
    planned before lookup tables were)."""
    if table is None:
        yield None
        return
    with ChunkPieces(*for_layer(ds, table, state.plan.target_table, state.plan.staging_table),
                     state.plan.columns) as pieces:
        yield pieces


@contextmanager
def _about(dataset: str, local: LocalCopy) -> Iterator[None]:
    """Whatever fails while a chunk is copied names the dataset and the file it came from."""
    try:
        yield
    except GeoloadError as exc:
        exc.where(dataset=dataset, file=local.path.name)
        raise
