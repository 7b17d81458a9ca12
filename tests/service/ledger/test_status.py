"""Where a run stands, derived from its loads in PostGIS and topped up from Redis."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from service.ledger import chunks, layers, loads, runs
from service.ledger.status import Poller, load_states, run_state, run_status, superseded
from service.live import Live
from service.load.columns import Column
from service.load.records import Chunk, ChunkCounts, LayerPlan, PlannedLayer


@pytest.mark.parametrize(("states", "expected"), [
    (["published", "published"], "succeeded"),
    (["failed", "loading"], "failing"),
    (["failed", "published"], "failed"),
    (["superseded", "published"], "superseded"),
    (["queued", "queued"], "queued"),
    (["queued", "fetching"], "running"),
    (["cancelled", "published"], "cancelled"),
    (["cancelled", "failed"], "failed"),
    (["cancelled", "loading"], "running"),
])
def test_a_runs_status_follows_from_its_loads(states, expected):
    assert run_state(states) == expected


def _planned_run(db: psycopg.Connection) -> tuple[str, int]:
    run_id = runs.create(db, ["timezone", "gadm"], {"timezone": "2026c"})
    load = loads.get(db, run_id, "timezone")
    assert load is not None
    plan = LayerPlan("combined", "timezone.timezones", "timezone__timezones__l1",
                     "ESRI Shapefile", "", [Column("tzid", "tzid", "text")], 30)
    with db.transaction():
        layers.save_plan(db, load.load_id, [PlannedLayer(plan, [Chunk(0, 9, 10, 1),
                                                                Chunk(10, 29, 20, 1)])])
        chunks.complete(db, load.load_id, "combined", 0, ChunkCounts(10, 0, 1, 0), 0.1)
    return run_id, load.load_id


def test_loaded_counts_come_from_the_ledger_topped_up_by_redis(clean_db, db):
    run_id, _ = _planned_run(db)
    live = Live(clean_db)
    live.chunk_progress(run_id, "timezone", "combined", 1, 7)   # the chunk still loading
    live.chunk_progress(run_id, "timezone", "combined", 0, 10)  # loaded: the ledger counts it
    found = run_status(db, live, run_id)
    assert found is not None
    timezone, gadm = found.datasets
    assert (timezone.dataset, timezone.status, timezone.release) == ("timezone", "loading",
                                                                     "2026c")
    assert (timezone.loaded, timezone.total) == (17, 30)
    (layer,) = timezone.layers
    assert (layer.table, layer.chunks_done, layer.chunks_total, layer.repaired) == (
        "timezone.timezones", 1, 2, 1)
    assert (gadm.status, gadm.layers) == ("queued", [])
    assert found.status == "running" and not found.finished and found.finished_at is None
    without_redis = run_status(db, None, run_id)
    assert without_redis is not None and without_redis.datasets[0].loaded == 10


def test_an_ended_run_says_when_and_why(clean_db, db):
    run_id, load_id = _planned_run(db)
    gadm = loads.get(db, run_id, "gadm")
    assert gadm is not None
    loads.fail(db, gadm.load_id, "no such layer", "BadSource", "plan_load")
    loads.mark_superseded(db, load_id, "newer-run")
    found = run_status(db, None, run_id)
    assert found is not None and found.finished and found.status == "failed"
    assert found.finished_at == max(d.finished_at for d in found.datasets if d.finished_at)
    timezone = found.datasets[0]
    assert superseded(timezone).startswith("superseded by run newer-run")
    data = found.as_json()
    assert (data["status"], data["datasets"][1]["error_step"]) == ("failed", "plan_load")
    assert sorted(load_states(db)[run_id]) == ["failed", "superseded"]
    assert run_status(db, None, "no-such-run") is None


def test_a_poller_keeps_the_last_status_while_postgis_is_away(clean_db, db):
    run_id, _ = _planned_run(db)
    poll = Poller(clean_db, None, run_id)
    seen = poll()
    assert seen is not None and seen.run_id == run_id
    poll.settings = replace(clean_db, database_url="postgresql://postgres@127.0.0.1:1/x")
    assert poll.conn is not None
    poll.conn.close()  # the connection dropped; reconnecting fails now
    assert poll() is seen
    poll.settings = clean_db
    again = poll()
    assert again is not None and again is not seen and again.run_id == run_id
