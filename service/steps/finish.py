"""finish_layer: index and analyze a fully loaded staging table.

Runs once per layer, triggered by the chunk that completed it; layers of one
dataset finish in parallel on different workers. The live tables are not
touched, so readers are not blocked while indexes build.
"""

from __future__ import annotations

from service import ledger
from service.load import staging
from service.messages import PUBLISH, Next
from service.settings import Settings
from service.steps import Outcome, check_ids, load_context, refused_data, skipped


def finish_layer(settings: Settings, run_id: str, dataset: str, layer: str) -> Outcome:
    ds = check_ids(run_id, dataset, ("layer", layer, str))
    spec = ds.layer(layer)
    ids = dict(run_id=run_id, dataset=dataset, layer=layer)
    with load_context(settings, run_id, dataset) as (conn, load):
        if load.finished:
            return skipped(f"load is {load.status}", **ids)
        with conn.transaction():
            row = ledger.layer_row(conn, load.load_id, layer, lock=True)
            if row is None or row["chunks_done"] < row["chunks_total"]:
                return skipped("layer is not fully loaded yet", **ids)
            if row["status"] == "ready":
                return _publish_if_complete(conn, load.load_id, ids)
            with refused_data(dataset, f"indexing {spec.table}"):
                seconds = staging.build_indexes(conn, row["staging_table"], spec.key,
                                                spec.indexes)
            size = staging.table_bytes(conn, row["staging_table"])
            ready, total = ledger.layer_ready(conn, load.load_id, layer, size, seconds)
    follow = [Next(PUBLISH, (run_id, dataset))] if ready == total else []
    return Outcome({"status": "indexed", **ids, "seconds": round(seconds, 3),
                    "table_bytes": size, "worker": ledger.worker_id()}, follow)


def _publish_if_complete(conn: object, load_id: int, ids: dict[str, str]) -> Outcome:
    """A duplicate: re-send publish in case the first delivery died before sending it."""
    rows = ledger.layer_rows(conn, load_id)  # type: ignore[arg-type]
    complete = all(r["status"] == "ready" for r in rows)
    follow = [Next(PUBLISH, (ids["run_id"], ids["dataset"]))] if complete else []
    return Outcome({"status": "skipped", "reason": "layer already indexed", **ids}, follow)
