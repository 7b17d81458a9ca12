"""plan_load: plan every layer, create the staging tables, and send what moves the load on.

The staging tables include the load's lookup table, which its chunks cut pieces into.

A redelivered plan (or the sweep) sends only what its load still needs, from where the
ledger stands (:func:`moves_on`), so that no layer waits for the sweep.
"""

from __future__ import annotations

import psycopg

from service import lookup
from service.catalog import Dataset
from service.fetch import fetch
from service.identity import worker_id
from service.ledger import chunks, layers, loads, parts
from service.ledger.records import Load
from service.live import Live
from service.load import staging
from service.load.plan import merge, plan_layer, refuse_warnings
from service.load.records import PlannedLayer
from service.pipeline.context import Outcome, check_ids, dataset_of, load_context, skipped
from service.pipeline.messages import CHUNK, FINISH, PUBLISH, Next
from service.read import layer_names
from service.settings import Settings


def plan_load(settings: Settings, live: Live, run_id: str, dataset: str) -> Outcome:
    """Plan once; a redelivered plan re-sends only what its load still needs (chunks not
    loaded, a loaded layer's finish_layer), so that no layer waits for the sweep."""
    check_ids(run_id, dataset)
    with load_context(settings, run_id, dataset) as (conn, load):
        ds = dataset_of(load)
        if load.finished:
            return skipped(f"load is {load.status}", run_id=run_id, dataset=dataset)
        if load.sha256 is None and load.options and load.options.countries:
            return skipped("waiting for every country's file; the last one's fetch sends "
                           "the plan", run_id=run_id, dataset=dataset)
        planned = _plan_layers(settings, conn, load, ds)
        with conn.transaction():
            locked = loads.get(conn, run_id, dataset, lock=True)
            assert locked is not None
            if locked.layers_total is None and not locked.finished:
                staging.ensure_schemas(conn, ds.schemas)
                for layer in planned:
                    staging.create(conn, layer.plan.staging_table, layer.plan.columns)
                layers.save_plan(conn, load.load_id, planned)
                if settings.lookup_tables:
                    layers.save_lookup(conn, load.load_id, lookup.create_staging(
                        conn, ds, load.load_id, {p.plan.target_table: p.plan.staging_table
                                                 for p in planned}))
            follow = moves_on(conn, load.load_id, run_id, dataset, settings.inflight_bytes)
    return Outcome(
        {"status": "planned", "run_id": run_id, "dataset": dataset,
         "layers": {p.plan.layer: {"features": p.plan.source_count, "chunks": len(p.chunks)}
                    for p in planned},
         "worker": worker_id()},
        follow,
    )


def _plan_layers(settings: Settings, conn: psycopg.Connection, load: Load,
                 ds: Dataset) -> list[PlannedLayer]:
    """Every layer's plan; by country, each country's layers merged, and a level no chosen
    country has left out."""
    if not (load.options and load.options.countries):
        local = fetch(ds, settings, pinned_sha256=load.sha256)
        planned = [plan_layer(ds, layer, local.path, load.load_id, settings)
                   for layer in ds.layers]
        if load.strict:
            refuse_warnings(ds, local.path, planned)
        return planned
    by_layer: dict[str, list[PlannedLayer]] = {}
    for code, sha256 in parts.pinned(conn, load.load_id).items():
        part_ds = load.options.part(ds, code)
        local = fetch(part_ds, settings, pinned_sha256=sha256)
        present = set(layer_names(local.path))
        found = [plan_layer(part_ds, layer, local.path, load.load_id, settings, part=code)
                 for layer in ds.layers if ds.source.layer_name(layer.name) in present]
        if load.strict:
            refuse_warnings(part_ds, local.path, found)
        for layer in found:
            by_layer.setdefault(layer.plan.layer, []).append(layer)
    return [merge(name, found) for name, found in by_layer.items()]


def moves_on(conn: psycopg.Connection, load_id: int, run_id: str, dataset: str,
             capacity: int | None = None) -> list[Next]:
    """What moves a planned load on from where its ledger stands, sent by a plan (first or
    redelivered) and by the sweep alike: the chunks not loaded yet (in the send order for a
    worker's budget ``capacity``), ``finish_layer`` for every layer whose chunks are all
    loaded but that is not indexed (a layer without chunks at once), and
    ``publish_dataset`` once every layer is indexed."""
    steps = [Next(CHUNK, (run_id, dataset, layer, n))
             for layer, n in chunks.pending(conn, load_id, capacity)]
    states = layers.of_load(conn, load_id)
    steps += [Next(FINISH, (run_id, dataset, state.layer)) for state in states
              if not state.ready and state.all_chunks_loaded]
    if states and all(state.ready for state in states):
        steps.append(Next(PUBLISH, (run_id, dataset)))
    return steps
