"""A load whose messages were lost is re-driven by the sweep, and finishes exactly once."""

from __future__ import annotations

import time

import psycopg

from service.broker import make_broker
from service.messages import CHUNK, FETCH, FINISH, PLAN, Next
from service.runs import Poller
from service.steps import sweep
from tests.steps_driver import drain, new_run


def _backdate(settings, run_id: str) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        db.execute("UPDATE geoload.runs SET created_at = created_at - interval '2 hours' "
                   "WHERE run_id = %s", (run_id,))
        db.execute("UPDATE geoload.loads SET started_at = started_at - interval '2 hours', "
                   "fetched_at = fetched_at - interval '2 hours' WHERE run_id = %s", (run_id,))
        db.execute("UPDATE geoload.chunks SET started_at = started_at - interval '2 hours', "
                   "finished_at = finished_at - interval '2 hours' WHERE load_id IN "
                   "(SELECT load_id FROM geoload.loads WHERE run_id = %s)", (run_id,))


def _layers_awaiting_finish(settings, run_id: str) -> int:
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        row = db.execute("SELECT count(*) FROM geoload.load_layers JOIN geoload.loads "
                         "USING (load_id) WHERE run_id = %s AND chunks_done = chunks_total "
                         "AND load_layers.status <> 'ready'", (run_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_lost_messages_are_sent_again_and_the_load_finishes(workers, settings):
    lost_plan = new_run(settings, "timezone")
    drain(settings, [Next(FETCH, (lost_plan, "timezone"))])  # the pipeline's plan was lost
    lost_chunks = new_run(settings, "gadm")
    held = drain(settings, [Next(FETCH, (lost_chunks, "gadm")), Next(PLAN, (lost_chunks, "gadm"))],
                 stop_before=CHUNK)
    drain(settings, held[:3], stop_before=FINISH)  # some chunks loaded, the rest lost
    recent = sweep.sweep(settings, make_broker(settings))
    assert recent["redriven"] == {}  # young loads are not stalled, only slow
    for run_id in (lost_plan, lost_chunks):
        _backdate(settings, run_id)
    assert sweep.sweep(settings, make_broker(settings), queued=5)["status"] == "skipped"
    swept = sweep.sweep(settings, make_broker(settings))
    assert swept["redriven"][f"{lost_plan}/timezone"]["status"] == "fetched"
    # The chunks not loaded, plus finish_layer for any layer those three completed.
    assert swept["redriven"][f"{lost_chunks}/gadm"]["messages"] == (
        len(held) - 3 + _layers_awaiting_finish(settings, lost_chunks))
    for run_id in (lost_plan, lost_chunks):
        poll, deadline = Poller(settings, None, run_id), time.monotonic() + 120
        while not (status := poll()).finished and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status.status == "succeeded", [d.error for d in status.datasets]
        assert all(d.loaded == d.total for d in status.datasets)
