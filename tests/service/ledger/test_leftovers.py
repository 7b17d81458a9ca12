"""Staging tables no unfinished load needs, and why: what the sweep may drop."""

from __future__ import annotations

from psycopg import sql

from service.ledger import layers, leftovers, loads, runs
from service.load.columns import Column
from service.load.names import STAGING
from service.load.records import LayerPlan, PlannedLayer


def _staged(db, table: str) -> None:
    db.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(STAGING, table)))


def _planned(db, staging_table: str) -> int:
    run_id = runs.create(db, ["gadm"], {})
    load = loads.get(db, run_id, "gadm")
    assert load is not None
    plan = LayerPlan("ADM_0", "gadm.adm_0", staging_table, "GPKG", "fid",
                     [Column("gid_0", "GID_0", "text")], 0)
    layers.save_plan(db, load.load_id, [PlannedLayer(plan, [])])
    return load.load_id


def test_only_tables_no_unfinished_load_owns_are_leftovers(clean_db, db):
    busy, failed = _planned(db, "gadm__adm_0__busy"), _planned(db, "gadm__adm_0__failed")
    loads.fail(db, failed, "boom", "BadSource", "load_chunk")
    for table in ("gadm__adm_0__busy", "gadm__adm_0__failed", "gadm__adm_0__retired_l7"):
        _staged(db, table)
    found = {left.table: left.reason for left in leftovers.leftover_staging(db)}
    run_id = db.execute("SELECT run_id FROM geoload.loads WHERE load_id = %s",
                        (failed,)).fetchone()[0]
    assert found == {"gadm__adm_0__failed": f"load of gadm in run {run_id} is failed",
                     "gadm__adm_0__retired_l7": "no load owns it (a retired live table)"}
    assert leftovers.staging_in_use(db, "gadm__adm_0__busy")
    assert not leftovers.staging_in_use(db, "gadm__adm_0__failed")
    assert busy != failed


def test_a_loads_lookup_table_is_owned_like_its_layers(clean_db, db):
    """The staging lookup table a load's chunks cut pieces into (issue 15) is its own: kept
    while the load runs, a leftover once it failed, and dropped with its layers' tables."""
    busy, failed = _planned(db, "gadm__adm_0__busy"), _planned(db, "gadm__adm_0__failed")
    layers.save_lookup(db, busy, "gadm__gadm_lookup__busy")
    layers.save_lookup(db, failed, "gadm__gadm_lookup__failed")
    loads.fail(db, failed, "boom", "BadSource", "load_chunk")
    for table in ("gadm__adm_0__busy", "gadm__adm_0__failed", "gadm__gadm_lookup__busy",
                  "gadm__gadm_lookup__failed"):
        _staged(db, table)
    found = {left.table for left in leftovers.leftover_staging(db)}
    assert found == {"gadm__adm_0__failed", "gadm__gadm_lookup__failed"}
    assert leftovers.staging_in_use(db, "gadm__gadm_lookup__busy")
    assert not leftovers.staging_in_use(db, "gadm__gadm_lookup__failed")
    assert sorted(layers.staging_tables(db, failed)) == ["gadm__adm_0__failed",
                                                         "gadm__gadm_lookup__failed"]
