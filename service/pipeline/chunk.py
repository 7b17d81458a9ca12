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

from service.errors import BadMessage, Cancelled, GeoloadError
from service.fetch import LocalCopy, fetch
from service.identity import worker_id
from service.ledger import chunks, layers
from service.ledger.records import LayerState
from service.live import Live
from service.load import budget
from service.load.chunk import Unloadable, copy_chunk
from service.pipeline.cancel import StopWhenCancelled, drop_cancelled
from service.pipeline.context import Outcome, check_ids, load_context, skipped
from service.pipeline.messages import FINISH, Next
from service.postgres import refused_data
from service.settings import Settings


def load_chunk(settings: Settings, live: Live, run_id: str, dataset: str, layer: str,
               chunk_no: int) -> Outcome:
    ds = check_ids(run_id, dataset, ("layer", layer, str), ("chunk_no", chunk_no, int))
    spec = ds.layer(layer)
    ids: dict[str, Any] = dict(run_id=run_id, dataset=dataset, layer=layer, chunk_no=chunk_no)
    with load_context(settings, run_id, dataset) as (conn, load):
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
        local = fetch(ds, settings, pinned_sha256=load.sha256)
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
                with _about(dataset, local), refused_data(dataset,
                                                          f"layer {layer!r} chunk {chunk_no}"):
                    counts = copy_chunk(
                        conn, local.path, state.plan, chunk.planned,
                        Unloadable(load.strict, spec.feature_key),
                        indexed={spec.key, *spec.indexes}, progress=progress)
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


def _already_loaded(state: LayerState, ids: dict[str, Any]) -> Outcome:
    """A duplicate: re-send the layer's next step in case the first delivery died before."""
    done = state.all_chunks_loaded and state.status == "loading"
    follow = [Next(FINISH, (ids["run_id"], ids["dataset"], ids["layer"]))] if done else []
    return Outcome({"status": "skipped", "reason": "chunk already loaded", **ids}, follow)


@contextmanager
def _about(dataset: str, local: LocalCopy) -> Iterator[None]:
    """Whatever fails while a chunk is copied names the dataset and the file it came from."""
    try:
        yield
    except GeoloadError as exc:
        exc.where(dataset=dataset, file=local.path.name)
        raise
