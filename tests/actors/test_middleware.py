"""Worker middleware: installed on the broker every worker process uses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import dramatiq
import pika
import psycopg
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from psycopg import sql

from service.identity import worker_id
from service.live import Live
from service.load.names import STAGING
from service.pipeline import steps
from service.pipeline.failure import record_failure
from service.pipeline.messages import CHUNK, FETCH, PLAN, Next
from service.settings import Settings
from tests.support.driver import drain, new_run

GADM_PATH = "/gadm/gadm4.1/gadm_410-levels.zip"


def test_every_worker_gives_memory_back_after_each_message():
    """Checked in a process of its own: importing ``actors`` sets the global broker."""
    check = ("from actors import broker; from actors.middleware import GiveBackMemory; "
             "print(sum(isinstance(m, GiveBackMemory) for m in broker.middleware))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-1] == "1"


# --- FailureRecorder on a real worker --------------------------------------------------------

@dataclass
class PrivateWorker:
    """A real Dramatiq worker on queues of the test's own, with geoload's FailureRecorder.

    ``record_failure`` messages go to ``failures``, which nobody consumes: the test
    reads them.
    """

    settings: Settings
    send: Callable[..., Any]
    failures: str

    def next_failure(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with pika.BlockingConnection(pika.URLParameters(self.settings.broker_url)) as conn:
            channel = conn.channel()
            while time.monotonic() < deadline:
                method, _, body = channel.basic_get(self.failures, auto_ack=True)
                if method is not None:
                    return json.loads(body)
                time.sleep(0.2)
        raise TimeoutError(f"no record_failure arrived within {timeout} s")


@contextmanager
def private_worker(settings: Settings, step: Callable[..., Any], actor_name: str,
                   **options: Any) -> Iterator[PrivateWorker]:
    from actors.middleware import FailureRecorder
    from service.pipeline.broker import amqp_url

    work, failures = f"{settings.queue}-private", f"{settings.queue}-failures"
    broker = RabbitmqBroker(url=amqp_url(settings.broker_url))
    broker.add_middleware(FailureRecorder(replace(settings, queue=failures)),
                          before=dramatiq.middleware.Retries)
    broker.declare_queue(failures, ensure=True)
    actor = dramatiq.actor(step, broker=broker, actor_name=actor_name, queue_name=work,
                           **options)
    broker.emit_after("process_boot")  # starts TimeLimit's timer, as the dramatiq CLI does
    worker = dramatiq.Worker(broker, queues={work}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        yield PrivateWorker(settings, actor.send, failures)
    finally:
        worker.stop()
        with pika.BlockingConnection(pika.URLParameters(settings.broker_url)) as connection:
            for queue in (work, failures):
                for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                    connection.channel().queue_delete(name)
        broker.close()


def test_a_time_limit_failure_names_the_limit_and_the_step(settings):
    """A real TimeLimit stops a real worker's message; the error FailureRecorder sends on
    (what geoload.loads.error will say) used to be empty: TimeLimitExceeded has no text."""
    def slow_step(run_id: str, dataset: str) -> None:
        for _ in range(300):  # the limit interrupts Python code, not one long C call
            time.sleep(0.1)

    with private_worker(settings, slow_step, "fetch_source", time_limit=1500,
                        max_retries=0) as worker:
        worker.send("run-1", "gadm")
        body = worker.next_failure()
    actor_name, args, error_type, error, _worker, attempts = body["args"]
    assert (body["actor_name"], actor_name, args, attempts) == (
        "record_failure", "fetch_source", ["run-1", "gadm"], 1)
    assert error_type == "TimeLimitExceeded"
    assert error == "fetch_source ran past its time limit of 1.5 s and was stopped"


# --- a chunk's failed attempts are kept ------------------------------------------------------

@pytest.fixture()
def planned(clean_db, tmp_path) -> tuple[Settings, list[Next]]:
    """A GADM run planned up to its chunks, with a host cache of this test's own."""
    settings = replace(clean_db, cache_dir=tmp_path / "cache")
    run_id = new_run(settings, "gadm")
    chunks = drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                   stop_before=CHUNK)
    return settings, chunks


def _real_chunk_step(settings: Settings) -> Callable[..., None]:
    live = Live(settings)
    return lambda *args: steps.call(settings, live, CHUNK, args) and None


def _chunk(settings: Settings, step: Next) -> dict[str, Any]:
    run_id, _, layer, chunk_no = step.args
    with psycopg.connect(settings.database_url) as db:
        row = db.execute(
            "SELECT c.status, c.attempts, c.error, c.errors, l.staging_table "
            "FROM geoload.chunks c JOIN geoload.loads USING (load_id) "
            "JOIN geoload.load_layers l USING (load_id, layer) "
            "WHERE run_id = %s AND c.layer = %s AND c.chunk_no = %s",
            (run_id, layer, chunk_no)).fetchone()
    return dict(zip(("status", "attempts", "error", "errors", "staging"), row))


def _rename(settings: Settings, old: str, new: str) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        db.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(STAGING, old),
                                                                 sql.Identifier(new)))


def _wait_chunk(settings: Settings, step: Next, done: Callable[[dict[str, Any]], bool],
                timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not done(found := _chunk(settings, step)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"chunk still {found} after {timeout} s")
        time.sleep(0.1)
    return found


def test_a_retried_chunk_keeps_every_failed_attempts_error(planned, upstream):
    """Attempt 1: upstream answers 503 (the host has no copy); attempt 2: the staging table
    is gone; attempt 3 loads. Each retry used to wipe the error before it."""
    settings, chunks = planned
    step = chunks[0]
    staging = _chunk(settings, step)["staging"]
    shutil.rmtree(settings.cache_dir)
    upstream.fault(GADM_PATH, "status", status=503, once=True)
    _rename(settings, staging, "away")
    try:
        with private_worker(settings, _real_chunk_step(settings), CHUNK, max_retries=5,
                            min_backoff=1000, max_backoff=2000) as worker:
            worker.send(*step.args)
            _wait_chunk(settings, step, lambda c: len(c["errors"]) >= 2)
            _rename(settings, "away", staging)
            found = _wait_chunk(settings, step, lambda c: c["status"] == "loaded")
    finally:
        upstream.clear_faults()
    assert found["error"] is None and found["attempts"] == len(found["errors"]) + 1
    assert [(e["attempt"], e["worker"], e["type"]) for e in found["errors"][:2]] == [
        (1, worker_id(), "UpstreamUnavailable"), (2, worker_id(), "UndefinedTable")]
    first, second = (e["error"] for e in found["errors"][:2])
    assert "503" in first and "does not exist" in second
    assert found["errors"][0]["at"] < found["errors"][1]["at"]


def test_a_dead_chunks_last_error_is_kept_once_in_the_recorders_words(planned):
    settings, chunks = planned
    step = chunks[1]
    staging = _chunk(settings, step)["staging"]
    _rename(settings, staging, "away")
    try:
        with private_worker(settings, _real_chunk_step(settings), CHUNK,
                            max_retries=0) as worker:
            worker.send(*step.args)
            dead = worker.next_failure()
    finally:
        _rename(settings, "away", staging)
    actor, args, error_type, error, worker_name, attempts = dead["args"]
    record_failure(settings, Live(settings), actor, args, error_type, error, worker=worker_name,
                   attempts=attempts)
    found = _chunk(settings, step)
    assert (found["status"], found["attempts"], found["error"]) == ("failed", 1, error)
    assert [(e["attempt"], e["type"], e["error"]) for e in found["errors"]] == [
        (1, "UndefinedTable", error)]
