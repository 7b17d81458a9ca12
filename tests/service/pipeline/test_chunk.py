"""load_chunk, the step: counts in the ledger with the rows, progress in Redis, finish once."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import replace

import psycopg
import pytest

from service import catalog
from service.errors import BadMessage
from service.fetch import cache
from service.fetch.mirror import source_url
from service.identity import worker_id
from service.live import Live, chunk_key
from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, Next
from tests.support.db import one
from tests.support.driver import drain, new_run, run_step


@pytest.fixture()
def planned(clean_db, tmp_path) -> tuple[object, str, list[Next]]:
    """A GADM run planned up to its chunks, with a host cache of this test's own."""
    settings = replace(clean_db, cache_dir=tmp_path / "cache")
    run_id = new_run(settings, "gadm")
    chunks = drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                   stop_before=CHUNK)
    return settings, run_id, chunks


def test_only_the_chunk_that_completes_its_layer_sends_finish(planned):
    settings, run_id, chunks = planned
    by_layer: dict[str, list[Next]] = defaultdict(list)
    for step in chunks:
        by_layer[step.args[2]].append(step)
    layer, steps = max(by_layer.items(), key=lambda item: len(item[1]))
    assert len(steps) > 1
    follow = [run_step(settings, step).next for step in steps]
    assert follow[:-1] == [[]] * (len(steps) - 1)
    assert follow[-1] == [Next(FINISH, (run_id, "gadm", layer))]
    with psycopg.connect(settings.database_url) as db:
        rows = db.execute(
            "SELECT c.chunk_no, c.status, c.loaded, c.features, c.worker, c.attempts, c.seconds "
            "FROM geoload.chunks c JOIN geoload.loads l USING (load_id) "
            "WHERE l.run_id = %s AND c.layer = %s ORDER BY c.chunk_no", (run_id, layer)
        ).fetchall()
    assert all(status == "loaded" and loaded == features and worker == worker_id()
               and attempts == 1 and seconds > 0
               for _, status, loaded, features, worker, attempts, seconds in rows)
    reported = Live(settings).chunks(run_id)
    assert {n: reported[chunk_key("gadm", layer, n)] for n, *_ in rows} == {
        n: features for n, _, _, features, *_ in rows}


def test_a_message_about_no_such_chunk_or_of_the_wrong_shape_is_refused(planned):
    settings, run_id, chunks = planned
    layer = chunks[0].args[2]
    with pytest.raises(BadMessage, match="no chunk 999"):
        run_step(settings, Next(CHUNK, (run_id, "gadm", layer, 999)))
    with pytest.raises(BadMessage, match="chunk_no must be int"):
        run_step(settings, Next(CHUNK, (run_id, "gadm", layer, "0")))
    with pytest.raises(BadMessage, match="no load of 'gadm' in run 'nope'"):
        run_step(settings, Next(CHUNK, ("nope", "gadm", layer, 0)))


def test_a_chunk_of_an_ended_load_does_nothing(planned):
    settings, run_id, chunks = planned
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        db.execute("UPDATE geoload.loads SET status = 'failed' WHERE run_id = %s", (run_id,))
        outcome = run_step(settings, chunks[0])
        assert one(db, "SELECT count(*) FROM geoload.chunks WHERE attempts > 0") == 0
    assert outcome.result["status"] == "skipped" and outcome.next == []


def test_a_chunk_does_not_wait_for_the_host_lock_when_its_version_is_here(planned):
    """Another worker on this host downloading (a new version, another dataset's) holds
    the host lock; chunks of a run whose version is already extracted here go on."""
    settings, _, chunks = planned
    archive = cache.archive_path(settings.cache_dir, "gadm",
                                 source_url(catalog.get("gadm"), settings))
    done: list[str] = []
    with cache.host_lock(archive.parent):
        started = time.monotonic()
        thread = threading.Thread(
            target=lambda: done.append(run_step(settings, chunks[0]).result["status"]))
        thread.start()
        thread.join(20)
        waited = time.monotonic() - started
    assert done == ["loaded"] and waited < 10
