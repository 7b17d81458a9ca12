"""Cancel: a run ends at once, its queued messages do nothing, a chunk in progress stops at
its next batch, staging tables go, live tables stay, and the sweep leaves it alone."""

from __future__ import annotations

import psycopg
import pytest

from service.errors import Cancelled, UnknownRun
from service.ledger import loads as load_ledger
from service.live import Live
from service.pipeline import cancel as cancelling
from service.pipeline import steps, sweep
from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, Next
from service.postgres import connect
from service.settings import Settings
from tests.support.db import one
from tests.support.driver import drain, new_run, run_step


def _staging(db: psycopg.Connection) -> int:
    return one(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'geoload_staging'")


def _cancel(settings: Settings, run_id: str) -> cancelling.CancelOutcome:
    with connect(settings, autocommit=True) as conn:
        return cancelling.cancel(conn, run_id)


def _published_timezone(settings: Settings) -> str:
    run_id = new_run(settings, "timezone")
    drain(settings, [Next(FETCH, (run_id, "timezone")), Next(PLAN, (run_id, "timezone"))])
    return run_id


def test_cancel_ends_the_run_drops_staging_and_leaves_live_tables(clean_db, db):
    first = _published_timezone(clean_db)
    live_before = one(db, "SELECT count(*), sum(ST_NPoints(geom)) FROM timezone.timezones")
    run_id = new_run(clean_db, "timezone", "gadm")
    held = drain(clean_db, [Next(FETCH, (run_id, d)) for d in ("timezone", "gadm")]
                 + [Next(PLAN, (run_id, d)) for d in ("timezone", "gadm")], stop_before=CHUNK)
    assert held and _staging(db) == 9  # 6 GADM levels, 1 time zone table, 2 lookup tables

    outcome = _cancel(clean_db, run_id)

    assert sorted(outcome.cancelled) == ["gadm", "timezone"] and outcome.ended == {}
    assert len(outcome.dropped) == 9 and _staging(db) == 0
    assert one(db, "SELECT array_agg(DISTINCT status) FROM geoload.loads WHERE run_id = %s",
               run_id) == ["cancelled"]
    # Queued messages arrive and do nothing; the live version is the first run's, unchanged.
    results = [run_step(clean_db, step) for step in held]
    assert {r.result["status"] for r in results} == {"skipped"}
    assert all(not r.next for r in results)
    assert one(db, "SELECT count(*), sum(ST_NPoints(geom)) FROM timezone.timezones") == \
        live_before
    assert one(db, "SELECT run_id FROM geoload.live WHERE dataset = 'timezone'") == first
    assert _staging(db) == 0


def test_cancelling_a_finished_run_is_a_no_op(clean_db, db):
    run_id = _published_timezone(clean_db)
    outcome = _cancel(clean_db, run_id)
    again = _cancel(clean_db, run_id)
    assert outcome.noop and again.noop
    assert outcome.ended == {"timezone": "published"}
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", run_id) == "published"


def test_cancelling_an_unknown_run_says_so(clean_db):
    with pytest.raises(UnknownRun, match="no run 'nope'"):
        _cancel(clean_db, "nope")


class _CancelsAtFirstBatch(Live):
    """Live progress that cancels the run when the chunk reports its first batch: the
    moment someone presses Cancel while a chunk copies."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        super().__init__(settings)
        self.settings, self.run_id, self.fired = settings, run_id, False

    def chunk_progress(self, run_id: str, dataset: str, layer: str, chunk_no: int,
                       features: int) -> None:
        if not self.fired:
            self.fired = True
            _cancel(self.settings, self.run_id)


def test_a_chunk_in_progress_stops_at_its_next_batch(clean_db, db, monkeypatch):
    monkeypatch.setattr(cancelling, "CHECK_EVERY_S", 0.0)
    run_id = new_run(clean_db, "gadm")
    held = drain(clean_db, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                 stop_before=CHUNK)
    # The largest chunk: several batches, so progress is reported while it copies.
    biggest = max(held, key=lambda step: one(
        db, "SELECT weight FROM geoload.chunks WHERE layer = %s AND chunk_no = %s",
        step.args[2], step.args[3]))
    live = _CancelsAtFirstBatch(clean_db, run_id)
    outcome = steps.call(clean_db, live, CHUNK, biggest.args)
    assert live.fired
    assert outcome.result["status"] == "skipped"
    assert outcome.result["reason"] == "load was cancelled"
    assert outcome.next == []
    assert one(db, "SELECT count(*) FROM geoload.chunks WHERE status = 'loaded'") == 0
    assert _staging(db) == 0


def test_the_watch_raises_once_the_load_ended(clean_db, db, monkeypatch):
    monkeypatch.setattr(cancelling, "CHECK_EVERY_S", 0.0)
    run_id = new_run(clean_db, "timezone")
    load_id = one(db, "SELECT load_id FROM geoload.loads WHERE run_id = %s", run_id)
    watch = cancelling.StopWhenCancelled(clean_db, load_id, "timezone")
    try:
        watch.check()  # still queued: goes on
        _cancel(clean_db, run_id)
        with pytest.raises(Cancelled, match="timezone"):
            watch.check()
    finally:
        watch.close()


def test_the_sweep_never_revives_a_cancelled_load(clean_db, db):
    run_id = new_run(clean_db, "timezone")
    drain(clean_db, [Next(FETCH, (run_id, "timezone")), Next(PLAN, (run_id, "timezone"))],
          stop_before=CHUNK)
    _cancel(clean_db, run_id)
    with connect(clean_db, autocommit=True) as conn:
        assert load_ledger.stalled(conn, 0) == []
    swept = sweep.sweep(clean_db, broker=None, older_than_s=0, queued=0)
    assert swept["redriven"] == {} and swept["failed"] == {}
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", run_id) == "cancelled"


def test_a_layer_indexed_after_the_cancel_has_its_table_dropped(clean_db, db):
    """An index build can't stop midway: the layer it finishes sends publish, which finds
    the load cancelled and drops the table; cancelling again drops what is left too."""
    run_id = new_run(clean_db, "timezone")
    held = drain(clean_db, [Next(FETCH, (run_id, "timezone")), Next(PLAN, (run_id, "timezone"))],
                 stop_before=FINISH)
    [finish] = held
    load_id = one(db, "SELECT load_id FROM geoload.loads WHERE run_id = %s", run_id)
    with connect(clean_db, autocommit=True) as conn, conn.transaction():
        # The cancel, as it lands while the layer's index builds (the drop waits, then gives up).
        load_ledger.cancel(conn, run_id, "cancelled (test)")
    assert _staging(db) == 2  # the layer's table and the lookup table
    db.execute("UPDATE geoload.loads SET status = 'indexing' WHERE load_id = %s", (load_id,))
    indexed = run_step(clean_db, finish)  # the index build that was already running
    db.execute("UPDATE geoload.loads SET status = 'cancelled' WHERE load_id = %s", (load_id,))
    [publish] = indexed.next
    published = run_step(clean_db, publish)
    assert published.result["status"] == "skipped" and len(published.result["dropped"]) == 2
    assert _staging(db) == 0
    assert one(db, "SELECT to_regclass('timezone.timezones') IS NULL")
    assert _cancel(clean_db, run_id).noop
