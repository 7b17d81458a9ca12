"""A load whose messages were lost is re-driven by the sweep, and finishes exactly once."""

from __future__ import annotations

import time

import psycopg
import psycopg.rows

from service.ledger import loads
from service.ledger.status import Poller
from service.live import Live
from service.pipeline import sweep
from service.pipeline.broker import make_broker
from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, Next
from tests.conftest import purge_queue
from tests.support.driver import drain, new_run


def _backdate(settings, run_id: str) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        db.execute("UPDATE geoload.runs SET created_at = created_at - interval '2 hours' "
                   "WHERE run_id = %s", (run_id,))
        db.execute("UPDATE geoload.loads SET started_at = started_at - interval '2 hours', "
                   "fetched_at = fetched_at - interval '2 hours', "
                   "download_at = download_at - interval '2 hours' WHERE run_id = %s", (run_id,))
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


def _staging_tables(settings) -> list[str]:
    with psycopg.connect(settings.database_url) as db:
        return sorted(r[0] for r in db.execute("SELECT tablename FROM pg_tables "
                                               "WHERE schemaname = 'geoload_staging'"))


def _load(settings, run_id: str) -> dict:
    with psycopg.connect(settings.database_url) as db, \
            db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM geoload.loads WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    return row


def test_the_sweep_drops_the_staging_tables_a_failed_load_left(clean_db, monkeypatch):
    """Issue 12, item 7: a chunk fails for good while another layer's index build holds its
    table, so ``record_failure`` can't drop that one; its redelivery drops nothing either."""
    from service.pipeline import failure
    from service.publish import swap

    settings = clean_db
    purge_queue(settings)
    run_id = new_run(settings, "gadm")
    chunks = drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                   stop_before=CHUNK)
    tables = _staging_tables(settings)
    busy = next(t for t in tables if "adm_4" in t)
    monkeypatch.setattr(swap, "LOCK_TIMEOUT", "200ms")
    with psycopg.connect(settings.database_url) as index_build:
        index_build.execute(f'LOCK TABLE geoload_staging."{busy}" IN SHARE MODE')
        for _delivery in range(2):
            failure.record_failure(settings, Live(settings), CHUNK, list(chunks[0].args),
                                   "BadSource", "boom")
    assert _staging_tables(settings) == [busy]  # leaked

    swept = sweep.sweep(settings, make_broker(settings))

    assert _staging_tables(settings) == []
    assert swept["dropped"] == {busy: f"load of gadm in run {run_id} is failed"}


def test_a_long_download_is_not_taken_for_a_stall(clean_db, upstream, upstream_files,
                                                  tmp_path, monkeypatch):
    """Issue 12, item 9: a fetch that downloads for longer than the stall limit records its
    progress in the ledger, so the sweep doesn't send it a new fetch → plan."""
    import threading
    from dataclasses import replace
    from urllib.parse import urlsplit

    from service import catalog
    from service.fetch.mirror import source_url
    from service.pipeline import fetch

    settings = replace(clean_db, cache_dir=tmp_path / "cache")  # nothing cached: a download
    path = urlsplit(source_url(catalog.get("timezone"), settings)).path
    size = upstream_files[1].timezone.path.stat().st_size
    monkeypatch.setattr(fetch, "LEDGER_PROGRESS_S", 0.3)
    upstream.fault(path, "throttle", rate=size / 4)  # a 4-second download
    run_id = new_run(settings, "timezone")
    downloading = threading.Thread(
        target=fetch.fetch_source, args=(settings, Live(settings), run_id, "timezone"))
    try:
        downloading.start()
        deadline = time.monotonic() + 10
        while _load(settings, run_id)["download_at"] is None:
            assert time.monotonic() < deadline, "no download progress in the ledger"
            time.sleep(0.05)
        _backdate(settings, run_id)  # as if it had been downloading for two hours
        with psycopg.connect(settings.database_url, autocommit=True) as db:
            time.sleep(1)
            stalled = [load.run_id for load in loads.stalled(db, sweep.STALLED_AFTER_S)]
        progress = _load(settings, run_id)
    finally:
        downloading.join(30)
        upstream.clear_faults()
    assert run_id not in stalled
    assert 0 < progress["download_bytes"] < size
    done = _load(settings, run_id)
    assert done["status"] == "fetched" and done["download_bytes"] == done["bytes"] == size


def test_a_load_naming_a_layer_the_catalog_no_longer_has_fails_instead_of_being_resent(
        clean_db, monkeypatch):
    """Issue 12, item 11(d): after a deploy drops a layer from the catalog, the load's
    messages for it can't run; the sweep fails the load, saying why, and sends nothing."""
    from dataclasses import replace

    from service import catalog

    settings = clean_db
    purge_queue(settings)
    run_id = new_run(settings, "gadm")
    drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
          stop_before=CHUNK)
    gadm = catalog.get("gadm")
    monkeypatch.setitem(catalog.DATASETS, "gadm", replace(gadm, layers=gadm.layers[:-1]))
    _backdate(settings, run_id)
    broker = make_broker(settings)

    swept = sweep.sweep(settings, broker)

    assert f"{run_id}/gadm" not in swept["redriven"]
    assert broker.get_queue_message_counts(settings.queue)[0] == 0
    load = _load(settings, run_id)
    assert (load["status"], load["error_type"], load["error_step"]) == (
        "failed", "ConfigError", "sweep_stalled_loads")
    assert load["error"].startswith("[gadm] this load was planned with layer 'ADM_5', which "
                                    "the catalog no longer has"), load["error"]
    assert "What to do: enqueue gadm again" in load["error"]
    assert _staging_tables(settings) == []


def test_a_chunk_naming_a_layer_the_catalog_no_longer_has_fails_its_load_at_once(
        clean_db, monkeypatch):
    """Issue 12, item 11(d), first delivery: the chunk fails with a permanent error naming
    the layer (not a BadMessage, which the workers dead-letter without failing any load), so
    the failure path fails the load and drops its staging tables now, not the sweep later."""
    from dataclasses import replace

    from service import catalog
    from service.errors import BadMessage, ConfigError, PermanentError
    from service.pipeline.failure import record_failure
    from tests.support.driver import run_step

    settings = clean_db
    purge_queue(settings)
    run_id = new_run(settings, "gadm")
    held = drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                 stop_before=CHUNK)
    gadm = catalog.get("gadm")
    gone = gadm.layers[-1].name
    monkeypatch.setitem(catalog.DATASETS, "gadm", replace(gadm, layers=gadm.layers[:-1]))
    [orphan, *_] = [step for step in held if step.args[2] == gone]
    assert _staging_tables(settings) != []

    try:
        run_step(settings, orphan)
        raise AssertionError("the chunk ran")
    except PermanentError as exc:
        error = exc
    assert isinstance(error, ConfigError) and not isinstance(error, BadMessage)
    assert str(error).startswith(f"[gadm] this load was planned with layer {gone!r}, which "
                                 "the catalog no longer has"), str(error)
    assert "What to do: enqueue gadm again" in str(error)

    # What the workers' middleware does with a message that failed for good.
    record_failure(settings, Live(settings), CHUNK, list(orphan.args), type(error).__name__,
                   str(error))
    load = _load(settings, run_id)
    assert (load["status"], load["error_type"], load["error_step"]) == (
        "failed", "ConfigError", CHUNK)
    assert _staging_tables(settings) == []
