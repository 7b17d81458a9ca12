"""record_failure: a dead message fails its load once, keeps its error, drops staging tables."""

from __future__ import annotations

import json

import pika
import psycopg

from service.identity import worker_id
from service.live import Live
from service.pipeline import failure
from service.pipeline.broker import make_broker
from service.pipeline.messages import CHUNK, FAILURE, FETCH, PLAN, Next
from tests.conftest import purge_queue
from tests.support.db import one
from tests.support.driver import drain, new_run


def _staging_tables(db: psycopg.Connection) -> int:
    return one(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'geoload_staging'")


def test_a_dead_chunk_fails_its_load_once_and_its_tables_go(clean_db, db):
    run_id = new_run(clean_db, "gadm")
    chunks = drain(clean_db, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                   stop_before=CHUNK)
    assert _staging_tables(db) == 7  # six levels and the lookup table
    args = list(chunks[0].args)
    first = failure.record_failure(clean_db, Live(clean_db), CHUNK, args, "BadSource", "broken",
                                   "otherhost:7", 3)
    again = failure.record_failure(clean_db, Live(clean_db), CHUNK, args, "BadSource",
                                   "broken")
    assert (first.result["status"], len(first.result["dropped"])) == ("failed", 7)
    assert (again.result["status"], again.result["dropped"]) == ("already-ended", [])
    assert _staging_tables(db) == 0
    assert one(db, "SELECT status, error, error_step, error_worker, error_attempts "
                   "FROM geoload.loads WHERE run_id = %s", run_id) == (
        "failed", "broken", CHUNK, "otherhost:7", 3)
    assert one(db, "SELECT status, error FROM geoload.chunks WHERE layer = %s AND chunk_no = %s",
               args[2], args[3]) == ("failed", "broken")


def test_a_message_of_no_run_is_ignored(clean_db, db):
    live = Live(clean_db)
    nameless = failure.record_failure(clean_db, live, "refresh_datasets", [], "X", "boom")
    unknown = failure.record_failure(clean_db, live, FETCH, ["no-run", "gadm"], "X", "boom")
    assert nameless.result == {"status": "ignored", "reason": "message names no run",
                               "actor": "refresh_datasets"}
    assert unknown.result["reason"] == "no such load"


def test_a_failed_attempt_of_a_chunk_is_kept_and_other_steps_are_left_alone(clean_db, db):
    run_id = new_run(clean_db, "gadm")
    chunks = drain(clean_db, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                   stop_before=CHUNK)
    args = list(chunks[0].args)
    db.execute("UPDATE geoload.chunks SET attempts = 1, worker = %s", (worker_id(),))
    failure.record_attempt(clean_db, CHUNK, args, "OperationalError", "server closed")
    failure.record_attempt(clean_db, PLAN, [run_id, "gadm"], "OperationalError", "ignored")
    failure.record_attempt(clean_db, CHUNK, ["no-run", "gadm", "ADM_0", 0], "X", "no such")
    errors = one(db, "SELECT errors FROM geoload.chunks WHERE layer = %s AND chunk_no = %s",
                 args[2], args[3])
    assert [(e["attempt"], e["type"], e["error"]) for e in errors] == [
        (1, "OperationalError", "server closed")]
    assert one(db, "SELECT count(*) FROM geoload.chunks WHERE errors <> '[]'") == 1
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", run_id) == "loading"


def test_a_dead_message_is_reported_once_but_a_dead_report_is_not(settings):
    purge_queue(settings)
    broker = make_broker(settings)
    try:
        failure.report_dead(broker, settings, CHUNK, ["r", "gadm", "ADM_1", 0], "BadSource",
                            "broken", "h:1", 2)
        failure.report_dead(broker, settings, FAILURE, [CHUNK, []], "BadSource", "loop?",
                            "h:1", 1)
    finally:
        broker.close()
    with pika.BlockingConnection(pika.URLParameters(settings.broker_url)) as connection:
        channel = connection.channel()
        bodies = []
        while (got := channel.basic_get(settings.queue, auto_ack=True))[0] is not None:
            bodies.append(json.loads(got[2]))
    assert [(b["actor_name"], b["args"]) for b in bodies] == [
        (FAILURE, [CHUNK, ["r", "gadm", "ADM_1", 0], "BadSource", "broken", "h:1", 2])]
