"""publish_dataset: swap every ready layer in at once and record the load as published.

A load is published only if no load of its dataset that learnt its version from
upstream later was published before it: a publish redelivered late (the sweep
re-sends it half an hour on) never puts an older version back. Such a load ends
as ``superseded`` and its staging tables are dropped.
"""

from __future__ import annotations

from typing import Any

import psycopg

from service import data_warnings, ledger
from service.catalog import Dataset
from service.data_warnings import DataWarning
from service.publish import swap as publish
from service.settings import Settings
from service.steps import Outcome, check_ids, load_context, skipped


def publish_dataset(settings: Settings, run_id: str, dataset: str) -> Outcome:
    """Exactly once per load: the load row's lock and status decide it."""
    ds = check_ids(run_id, dataset)
    ids = dict(run_id=run_id, dataset=dataset)
    with load_context(settings, run_id, dataset) as (conn, load):
        if load.finished:
            return _already_finished(conn, load, ids)
        with conn.transaction():
            locked = ledger.get_load(conn, run_id, dataset, lock=True)
            assert locked is not None
            if locked.finished:  # another delivery published meanwhile, and drops its tables
                return skipped(f"load is {locked.status}", **ids)
            layers = ledger.layer_rows(conn, load.load_id)
            if not layers or any(row["status"] != "ready" for row in layers):
                return skipped("not every layer is indexed yet", **ids)
            publish.limit_lock_wait(conn)
            newer = ledger.take_live(conn, dataset, load.load_id)
            if newer is None:
                publish.swap(conn, dataset, load.load_id, layers)
                summary = layer_summary(layers)
                dropped = dropped_warnings(conn, ds, load.load_id, layers)
                ledger.mark_published(conn, load.load_id, summary,
                                      data_warnings.to_json(dropped))
            else:
                ledger.mark_superseded(conn, load.load_id, newer)
        if newer is not None:
            return _superseded(conn, newer, [row["staging_table"] for row in layers], ids)
        retired = publish.drop_retired(conn, dataset)
    return Outcome({"status": "published", **ids, "layers": summary, "retired": retired,
                    "warnings": len(dropped), "worker": ledger.worker_id()})


def _superseded(conn: psycopg.Connection, newer: str, tables: list[str],
                ids: dict[str, str]) -> Outcome:
    """The live version was fetched after this one: keep it, and drop this load's tables
    (one still in use is left for the sweep)."""
    return Outcome({"status": "superseded", **ids, "by": newer,
                    "dropped": publish.drop_staged(conn, tables),
                    "worker": ledger.worker_id()})


def _already_finished(conn: psycopg.Connection, load: ledger.Load,
                      ids: dict[str, str]) -> Outcome:
    """A redelivery: the swap committed, but the first delivery may have died before the
    retired tables were dropped (a lost connection), so drop them now; likewise a
    superseded load's staging tables."""
    outcome = skipped(f"load is {load.status}", **ids)
    if load.status == "published":
        outcome.result["retired"] = publish.drop_retired(conn, ids["dataset"])
    elif load.status == "superseded":
        outcome.result["dropped"] = publish.drop_staged(conn, ledger.staging_tables(
            conn, load.load_id))
    return outcome


def layer_summary(layers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per layer, the source count beside what was loaded, repaired and dropped."""
    return {row["layer"]: {
        "table": row["target_table"], "source": row["source_count"], "loaded": row["loaded"],
        "empty": row["empty"], "repaired": row["repaired"], "parts_dropped": row["parts_dropped"],
        "dropped": row["dropped"], "table_bytes": row["table_bytes"],
    } for row in layers}


def dropped_warnings(conn: psycopg.Connection, ds: Dataset, load_id: int,
                     layers: list[dict[str, Any]]) -> list[DataWarning]:
    """One warning per layer that kept features with geom NULL, from what its chunks listed."""
    listed = ledger.dropped_features(conn, load_id)
    return [data_warnings.dropped(row["layer"], ds.layer(row["layer"]).feature_key,
                                  row["dropped"], listed.get(row["layer"], []))
            for row in layers if row["dropped"]]
