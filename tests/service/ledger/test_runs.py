"""``geoload.runs``: a run and its loads, recorded together; failed together if unsent."""

from __future__ import annotations

import re

from service.ledger import loads, runs
from tests.support.db import one


def test_a_run_is_recorded_with_one_queued_load_per_dataset(clean_db, db):
    run_id = runs.create(db, ["gadm", "timezone"], {"timezone": "2026c"}, origin="test",
                         retry_of="earlier-run", strict=True)
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", run_id)
    assert one(db, "SELECT datasets, origin, retry_of FROM geoload.runs WHERE run_id = %s",
               run_id) == (["gadm", "timezone"], "test", "earlier-run")
    rows = db.execute("SELECT dataset, status, release, strict FROM geoload.loads "
                      "WHERE run_id = %s ORDER BY dataset", (run_id,)).fetchall()
    assert rows == [("gadm", "queued", None, True), ("timezone", "queued", "2026c", True)]


def test_recent_runs_come_newest_first(clean_db, db):
    made = [runs.create(db, ["gadm"], {}) for _ in range(3)]
    db.execute("UPDATE geoload.runs SET created_at = created_at - make_interval(secs => %s) "
               "WHERE run_id = %s", (100, made[1]))
    assert runs.recent(db, limit=2) == [made[2], made[0]]


def test_a_run_whose_messages_were_not_sent_fails_every_load_once(clean_db, db):
    run_id = runs.create(db, ["gadm", "timezone"], {})
    timezone = loads.get(db, run_id, "timezone")
    assert timezone is not None
    loads.fail(db, timezone.load_id, "failed earlier", "BadSource", "fetch_source")
    runs.fail_unsent(db, run_id, "not enqueued: ConnectionClosed", "ConnectionClosed")
    rows = db.execute("SELECT dataset, status, error, error_step FROM geoload.loads "
                      "WHERE run_id = %s ORDER BY dataset", (run_id,)).fetchall()
    assert rows == [("gadm", "failed", "not enqueued: ConnectionClosed", "enqueue"),
                    ("timezone", "failed", "failed earlier", "fetch_source")]


def test_forgetting_unstarted_runs_keeps_those_that_started(clean_db, db):
    unstarted, started = runs.create(db, ["gadm"], {}), runs.create(db, ["gadm"], {})
    other_origin = runs.create(db, ["gadm"], {}, origin="dashboard")
    db.execute("UPDATE geoload.loads SET status = 'fetching' WHERE run_id = %s", (started,))
    runs.forget_unstarted(db, "cli")
    left = {r[0] for r in db.execute("SELECT run_id FROM geoload.runs")}
    assert left == {started, other_origin} and unstarted not in left
    assert one(db, "SELECT count(*) FROM geoload.loads WHERE run_id = %s", unstarted) == 0
