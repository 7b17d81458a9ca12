"""A plan sends whatever moves its load on, so no layer waits for the sweep to finish it."""

from __future__ import annotations

import psycopg

from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, PUBLISH, Next
from tests.support.driver import drain, new_run, run_step


def test_a_redelivered_plan_finishes_a_loaded_layer_whose_finish_was_lost(clean_db):
    settings = clean_db
    run_id = new_run(settings, "timezone")
    plan = Next(PLAN, (run_id, "timezone"))
    chunks = drain(settings, [Next(FETCH, (run_id, "timezone")), plan], stop_before=CHUNK)
    lost_finish = drain(settings, chunks, stop_before=FINISH)
    assert len(lost_finish) == 1

    again = run_step(settings, plan)

    assert again.next == lost_finish
    assert drain(settings, again.next, stop_before=PUBLISH) == [Next(PUBLISH, (run_id,
                                                                                "timezone"))]


def test_a_layer_without_chunks_is_finished_by_the_plan_itself(clean_db):
    """0 of 0 chunks done is done: the plan sends finish_layer at once (issue 12, item 2)."""
    settings = clean_db
    run_id = new_run(settings, "timezone")
    plan = Next(PLAN, (run_id, "timezone"))
    drain(settings, [Next(FETCH, (run_id, "timezone")), plan], stop_before=CHUNK)
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        # The ledger of a layer that really has no rows: no chunk to load.
        db.execute("DELETE FROM geoload.chunks")
        db.execute("UPDATE geoload.load_layers SET chunks_total = 0")

    again = run_step(settings, plan)

    assert again.next == [Next(FINISH, (run_id, "timezone", "combined-shapefile-with-oceans"))]
    assert drain(settings, again.next, stop_before=PUBLISH) == [Next(PUBLISH, (run_id,
                                                                                "timezone"))]
    with psycopg.connect(settings.database_url) as db:
        layer = db.execute("SELECT l.status FROM geoload.load_layers l JOIN geoload.loads "
                           "USING (load_id) WHERE run_id = %s", (run_id,)).fetchone()
    assert layer == ("ready",)
