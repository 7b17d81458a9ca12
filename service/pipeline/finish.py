"""finish_layer: index and analyze a fully loaded staging table.

Runs once per layer, triggered by the chunk that completed it; layers of one
dataset finish in parallel on different workers. The live tables are not
touched, so readers are not blocked while indexes build. The layer that
completes its dataset also indexes the load's lookup table, and sends ``publish_dataset``.
"""

from __future__ import annotations

import psycopg

from service import lookup
from service.identity import worker_id
from service.ledger import layers, loads
from service.ledger.records import LookupCost
from service.live import Live
from service.load import staging
from service.load.names import STAGING
from service.pipeline.context import Outcome, check_ids, dataset_of, load_context, skipped
from service.pipeline.messages import PUBLISH, Next
from service.postgres import refused_data
from service.settings import Settings


def finish_layer(settings: Settings, live: Live, run_id: str, dataset: str,
                 layer: str) -> Outcome:
    check_ids(run_id, dataset, ("layer", layer, str))
    ids = dict(run_id=run_id, dataset=dataset, layer=layer)
    with load_context(settings, run_id, dataset) as (conn, load):
        spec = dataset_of(load).layer(layer)
        if load.finished:
            return skipped(f"load is {load.status}", **ids)
        with conn.transaction():
            state = layers.get(conn, load.load_id, layer, lock=True)
            if state is None or state.chunks_done < state.chunks_total:
                return skipped("layer is not fully loaded yet", **ids)
            if state.ready:
                return _publish_if_complete(conn, load.load_id, ids)
            table = state.plan.staging_table
            with refused_data(dataset, f"indexing {spec.table}"):
                seconds = staging.build_indexes(conn, table, spec.key, spec.indexes)
            size = staging.table_bytes(conn, table)
            ready, total = layers.mark_ready(conn, load.load_id, layer, size, seconds)
            if ready == total and load.lookup_staging is not None:
                _index_lookup(conn, load.load_id, load.lookup_staging)
    follow = [Next(PUBLISH, (run_id, dataset))] if ready == total else []
    return Outcome({"status": "indexed", **ids, "seconds": round(seconds, 3),
                    "table_bytes": size, "worker": worker_id()}, follow)


def _index_lookup(conn: psycopg.Connection, load_id: int, table: str) -> None:
    """The layer that completes the load indexes its lookup table (every chunk has cut its
    pieces in), in the transaction that marks it ready: exactly once."""
    qualified = f"{STAGING}.{table}"
    seconds = lookup.index_table(conn, qualified)
    pieces, table_bytes, index_bytes = lookup.sizes(conn, qualified)
    loads.record_lookup(conn, load_id, LookupCost(table, pieces, round(seconds, 3),
                                                  table_bytes, index_bytes))


def _publish_if_complete(conn: psycopg.Connection, load_id: int, ids: dict[str, str]) -> Outcome:
    """A duplicate: re-send publish in case the first delivery died before sending it."""
    complete = all(state.ready for state in layers.of_load(conn, load_id))
    follow = [Next(PUBLISH, (ids["run_id"], ids["dataset"]))] if complete else []
    return Outcome({"status": "skipped", "reason": "layer already indexed", **ids}, follow)
