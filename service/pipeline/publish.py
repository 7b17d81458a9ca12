"""publish_dataset: swap every ready layer in at once and record the load as published.

In the same transaction, just before the swap, the change report compares the live
tables with the staging ones (:mod:`service.changes`) and is stored with the load id;
the load's lookup table is swapped in with its data tables, so a reader never sees
lookup pieces of one version beside data tables of another.

A load is published only if no load of its dataset that learnt its version from
upstream later was published before it: a publish redelivered late (the sweep
re-sends it half an hour on) never puts an older version back. Such a load ends
as ``superseded`` and its staging tables are dropped.
"""

from __future__ import annotations

from typing import Any

import psycopg

from service import catalog, changes, data_warnings, lookup
from service.catalog import Dataset
from service.data_warnings import DataWarning
from service.identity import worker_id
from service.ledger import archive as kept_versions
from service.ledger import changes as ledger_changes
from service.ledger import chunks, layers, loads, schema
from service.ledger.records import LayerState, Load
from service.live import Live
from service.pipeline import versions
from service.pipeline.context import (
    Outcome,
    check_ids,
    dataset_of,
    every_level,
    load_context,
    skipped,
)
from service.publish import swap
from service.settings import Settings


def publish_dataset(settings: Settings, live: Live, run_id: str, dataset: str) -> Outcome:
    """Exactly once per load: the load row's lock and status decide it."""
    check_ids(run_id, dataset)
    ids = dict(run_id=run_id, dataset=dataset)
    with load_context(settings, run_id, dataset) as (conn, load):
        ds = dataset_of(load)
        if load.finished:
            return _already_finished(conn, load, ids)
        # The lookup's SQL functions come with the schema: current even if an older
        # enqueue made it. Before the publish transaction, so its lock is not held through.
        schema.ensure(conn)
        with conn.transaction():
            locked = loads.get(conn, run_id, dataset, lock=True)
            assert locked is not None
            if locked.finished:  # another delivery published meanwhile, and drops its tables
                return skipped(f"load is {locked.status}", **ids)
            states = layers.of_load(conn, load.load_id)
            if not states or not all(state.ready for state in states):
                return skipped("not every layer is indexed yet", **ids)
            swap.limit_lock_wait(conn)
            previous = (kept_versions.previous_live(conn, dataset, load.target_schema)
                        if settings.keep_versions else None)
            replaced = layers.live_tables(conn, dataset, load.target_schema)
            newer = loads.take_live(conn, dataset, load.load_id)
            if newer is None:
                tables = {s.plan.target_table: s.plan.staging_table for s in states}
                whole = every_level(load)  # with the levels this load did not choose
                report = changes.compare(conn, dataset, load.load_id, changes.compared_layers(
                    whole, tables, gone=set(replaced) - set(tables)))
                ledger_changes.save(conn, report)
                staged = dict(tables)
                if locked.lookup_staging is not None:
                    staged[lookup.lookup_table(ds)] = locked.lookup_staging
                # What the new version has no table for goes with the version it belongs
                # to: the levels this load did not choose, and, loaded without one
                # (GEOLOAD_LOOKUP=0), the lookup table, which answers for no version but
                # its own.
                without = [*(layer.table for layer in whole.layers), lookup.lookup_table(ds)]
                retired = swap.swap(conn, ds.stem, load.load_id, staged, without=without)
                versions.keep(conn, ds, load.target_schema, previous, [*staged, *without],
                              retired, load.load_id, settings.keep_versions)
                summary = layer_summary(states)
                dropped = dropped_warnings(conn, ds, load.load_id, states)
                loads.mark_published(conn, load.load_id, summary,
                                     data_warnings.to_json(dropped))
            else:
                loads.mark_superseded(conn, load.load_id, newer)
        if newer is not None:
            return _superseded(conn, newer, layers.staging_tables(conn, load.load_id), ids)
        retired = swap.drop_retired(conn, ds.stem)
    return Outcome({"status": "published", **ids, "layers": summary, "retired": retired,
                    "warnings": len(dropped), "changes": report.summary(),
                    "worker": worker_id()})


def _superseded(conn: psycopg.Connection, newer: str, tables: list[str],
                ids: dict[str, str]) -> Outcome:
    """The live version was fetched after this one: keep it, and drop this load's tables
    (one still in use is left for the sweep)."""
    return Outcome({"status": "superseded", **ids, "by": newer,
                    "dropped": swap.drop_staged(conn, tables), "worker": worker_id()})


def _already_finished(conn: psycopg.Connection, load: Load, ids: dict[str, str]) -> Outcome:
    """A redelivery: the swap committed, but the first delivery may have died before the
    retired tables were dropped (a lost connection), so drop them now; likewise a
    superseded or cancelled load's staging tables (a layer indexed while its run was
    cancelled sends publish, which lands here)."""
    outcome = skipped(f"load is {load.status}", **ids)
    if load.status == "published":
        outcome.result["retired"] = swap.drop_retired(conn, catalog.get(load.dataset).stem)
    elif load.status in ("superseded", "cancelled"):
        outcome.result["dropped"] = swap.drop_staged(conn, layers.staging_tables(
            conn, load.load_id))
    return outcome


def layer_summary(states: list[LayerState]) -> dict[str, dict[str, Any]]:
    """Per layer, the source count beside what was loaded, repaired and dropped."""
    return {s.layer: {
        "table": s.plan.target_table, "source": s.plan.source_count, "loaded": s.loaded,
        "empty": s.empty, "repaired": s.repaired, "parts_dropped": s.parts_dropped,
        "dropped": s.dropped, "table_bytes": s.table_bytes,
    } for s in states}


def dropped_warnings(conn: psycopg.Connection, ds: Dataset, load_id: int,
                     states: list[LayerState]) -> list[DataWarning]:
    """One warning per layer that kept features with geom NULL, from what its chunks listed."""
    listed = chunks.dropped_features(conn, load_id)
    return [data_warnings.dropped(s.layer, ds.layer(s.layer).feature_key, s.dropped,
                                  listed.get(s.layer, [])) for s in states if s.dropped]
