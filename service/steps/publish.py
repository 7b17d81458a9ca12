"""publish_dataset: swap every ready layer in at once and record the load as published."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from service import data_warnings, ledger, publish
from service.catalog import Dataset
from service.data_warnings import DataWarning
from service.settings import Settings
from service.steps import Outcome, check_ids, load_context, skipped


def publish_dataset(settings: Settings, run_id: str, dataset: str) -> Outcome:
    """Exactly once per load: the load row's lock and status decide it."""
    ds = check_ids(run_id, dataset)
    ids = dict(run_id=run_id, dataset=dataset)
    with load_context(settings, run_id, dataset) as (conn, load):
        if load.finished:
            return _already_finished(conn, load.status, ids)
        with conn.transaction():
            locked = ledger.get_load(conn, run_id, dataset, lock=True)
            assert locked is not None
            if locked.finished:  # another delivery published meanwhile, and drops its tables
                return skipped(f"load is {locked.status}", **ids)
            layers = ledger.layer_rows(conn, load.load_id)
            if not layers or any(row["status"] != "ready" for row in layers):
                return skipped("not every layer is indexed yet", **ids)
            publish.swap(conn, dataset, load.load_id, layers)
            summary = layer_summary(layers)
            dropped = dropped_warnings(conn, ds, load.load_id, layers)
            conn.execute("UPDATE geoload.loads SET status = 'published', "
                         "finished_at = clock_timestamp(), layers = %s, "
                         "warnings = coalesce(warnings, '[]'::jsonb) || %s::jsonb "
                         "WHERE load_id = %s",
                         (json.dumps(summary), json.dumps(data_warnings.to_json(dropped)),
                          load.load_id))
        retired = publish.drop_retired(conn, dataset)
    return Outcome({"status": "published", **ids, "layers": summary, "retired": retired,
                    "warnings": len(dropped), "worker": ledger.worker_id()})


def _already_finished(conn: psycopg.Connection, status: str, ids: dict[str, str]) -> Outcome:
    """A redelivery: the swap committed, but the first delivery may have died before the
    retired tables were dropped (a lost connection), so drop them now."""
    outcome = skipped(f"load is {status}", **ids)
    if status == "published":
        outcome.result["retired"] = publish.drop_retired(conn, ids["dataset"])
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
