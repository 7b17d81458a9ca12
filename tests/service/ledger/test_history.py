"""What the dashboard reads of the past: what is live, the latest attempt, failures, sums."""

from __future__ import annotations

from service.ledger import chunks, history, layers, loads, runs
from service.load.columns import Column
from service.load.records import Chunk, ChunkCounts, LayerPlan, PlannedLayer


def _load(db, dataset: str, status: str, **columns: object) -> tuple[str, int]:
    run_id = runs.create(db, [dataset], {})
    load = loads.get(db, run_id, dataset)
    assert load is not None
    db.execute("UPDATE geoload.loads SET status = %s, started_at = now() - interval '10 s', "
               "finished_at = now(), bytes = %s, layers = %s WHERE load_id = %s",
               (status, columns.get("bytes"), columns.get("layers"), load.load_id))
    return run_id, load.load_id


def test_the_live_load_the_latest_attempt_and_the_failures(clean_db, db):
    old, _ = _load(db, "gadm", "published", bytes=10)
    live, live_id = _load(db, "gadm", "published", bytes=20, layers='{"ADM_0": {"loaded": 3}}')
    failed, failed_id = _load(db, "gadm", "queued")
    plan = LayerPlan("ADM_0", "gadm.adm_0", "gadm__adm_0__lx", "GPKG", "fid",
                     [Column("gid_0", "GID_0", "text")], 3)
    layers.save_plan(db, failed_id, [PlannedLayer(plan, [Chunk(1, 3, 3, 30)])])
    chunks.start_attempt(db, failed_id, "ADM_0", 0)
    chunks.fail(db, failed_id, "ADM_0", 0, "broken", "BadSource")
    loads.fail(db, failed_id, "broken", "BadSource", "load_chunk")
    retry = runs.create(db, ["gadm"], {}, retry_of=failed)

    published = history.published(db)["gadm"]
    assert (published.run_id, published.bytes, published.layers) == (
        live, 20, {"ADM_0": {"loaded": 3}})
    assert published.load_id == live_id and old != live and published.warnings == []
    latest = history.latest(db)["gadm"]
    assert (latest.run_id, latest.status) == (retry, "queued")
    (failure,) = history.failures(db)
    assert (failure.run_id, failure.layer, failure.chunk_no, failure.attempts,
            failure.error_step, failure.retried_by) == (failed, "ADM_0", 0, 1, "load_chunk",
                                                        retry)
    assert history.retries_of(db, failed) == [retry]


def test_sums_for_the_metrics(clean_db, db):
    _, load_id = _load(db, "timezone", "queued")
    plan = LayerPlan("combined", "timezone.timezones", "tz__l1", "ESRI Shapefile", "",
                     [Column("tzid", "tzid", "text")], 5)
    layers.save_plan(db, load_id, [PlannedLayer(plan, [Chunk(0, 4, 5, 50)])])
    for _ in range(3):
        chunks.start_attempt(db, load_id, "combined", 0)
    chunks.complete(db, load_id, "combined", 0, ChunkCounts(5, 0, 0, 0), 0.1)
    db.execute("UPDATE geoload.loads SET status = 'published', bytes = 99 WHERE load_id = %s",
               (load_id,))
    sums = history.totals(db)
    assert [(f.dataset, f.layer, f.loaded) for f in sums.features] == [
        ("timezone", "combined", 5)]
    assert [(c.dataset, c.status, c.n, c.bytes) for c in sums.loads] == [
        ("timezone", "published", 1, 99)]
    assert [(r.dataset, r.n) for r in sums.retries] == [("timezone", 2)]
    (last,) = sums.last
    assert last.features == 5 and 9 < (last.seconds or 0) < 11
    assert history.table_bytes(db, ["timezone.timezones"]) == {"timezone.timezones": None}
