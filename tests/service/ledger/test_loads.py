"""``geoload.loads`` and ``geoload.live``: each change happens once, and never after the end."""

from __future__ import annotations

import psycopg
import pytest

from service.fetch.http import Validators
from service.ledger import loads, runs
from service.ledger.records import Load, LookupCost
from tests.support.db import one

V1 = Validators(url="https://up.example/x.zip", etag='"v1"', last_modified=None, size=10,
                sha256="a" * 64)
V2 = Validators(url="https://up.example/x.zip", etag='"v2"', last_modified=None, size=12,
                sha256="b" * 64)


def _load(db: psycopg.Connection, dataset: str = "gadm", **kwargs) -> Load:
    run_id = runs.create(db, [dataset], {}, **kwargs)
    load = loads.get(db, run_id, dataset)
    assert load is not None
    return load


def test_a_load_comes_back_typed_and_strict_as_enqueued(clean_db, db):
    load = _load(db, strict=True)
    assert (load.dataset, load.status, load.sha256, load.layers_total, load.strict) == (
        "gadm", "queued", None, None, True)
    assert not load.finished
    assert loads.get(db, load.run_id, "timezone") is None


def test_the_first_fetch_pins_the_version_and_a_later_one_changes_nothing(clean_db, db):
    load = _load(db)
    loads.record_fetch(db, load.load_id, V1.url, V1, order=loads.fetch_order(db))
    loads.record_fetch(db, load.load_id, V2.url, V2)  # a redelivered fetch, other bytes
    pinned = loads.get(db, load.run_id, "gadm")
    assert pinned is not None and pinned.sha256 == V1.sha256 and pinned.status == "fetched"
    assert one(db, "SELECT etag, bytes FROM geoload.loads WHERE load_id = %s",
               load.load_id) == ('"v1"', 10)


def test_a_304_takes_its_place_in_the_fetch_order_when_it_is_recorded(clean_db, db):
    first, second = _load(db), _load(db)
    before = loads.fetch_order(db)
    loads.record_fetch(db, second.load_id, V1.url, V1)  # no order: upstream answered 304
    loads.record_fetch(db, first.load_id, V1.url, V1, order=before)
    orders = {row[0]: row[1] for row in db.execute(
        "SELECT load_id, fetch_order FROM geoload.loads")}
    assert orders[first.load_id] == before < orders[second.load_id]


def test_a_load_fails_once_and_an_ended_load_stays_as_it_ended(clean_db, db):
    load = _load(db)
    assert loads.fail(db, load.load_id, "boom", "BadSource", "plan_load", worker="h:1",
                      attempts=3)
    assert not loads.fail(db, load.load_id, "later", "TransientError", "load_chunk")
    loads.set_status(db, load.load_id, "loading")
    loads.download_progress(db, load.load_id, 500)
    assert one(db, "SELECT status, error, error_step, error_worker, error_attempts, "
                   "download_bytes FROM geoload.loads WHERE load_id = %s", load.load_id) == (
        "failed", "boom", "plan_load", "h:1", 3, None)


def test_only_a_load_fetched_later_takes_the_live_place(clean_db, db):
    older, newer = _load(db, "timezone"), _load(db, "timezone")
    loads.record_fetch(db, older.load_id, V1.url, V1, order=loads.fetch_order(db))
    loads.record_fetch(db, newer.load_id, V2.url, V2, order=loads.fetch_order(db))
    with db.transaction():
        assert loads.take_live(db, "timezone", newer.load_id) is None
        loads.mark_published(db, newer.load_id, {"tz": {"loaded": 1}}, [])
    with db.transaction():
        assert loads.take_live(db, "timezone", older.load_id) == newer.run_id
        loads.mark_superseded(db, older.load_id, newer.run_id)
    assert one(db, "SELECT load_id FROM geoload.live WHERE dataset = 'timezone'") == (
        newer.load_id)
    assert one(db, "SELECT status, superseded_by FROM geoload.loads WHERE load_id = %s",
               older.load_id) == ("superseded", newer.run_id)


@pytest.mark.parametrize("moved", ["run", "download", "chunk"])
def test_a_load_is_stalled_only_when_nothing_about_it_moved(clean_db, db, moved):
    load = _load(db)
    db.execute("UPDATE geoload.runs SET created_at = now() - interval '1 hour'")
    assert [s.load_id for s in loads.stalled(db, 1800)] == [load.load_id]
    if moved == "run":
        db.execute("UPDATE geoload.runs SET created_at = now()")
    elif moved == "download":
        loads.download_progress(db, load.load_id, 1)
    else:
        db.execute("INSERT INTO geoload.load_layers (load_id, layer, target_table, "
                   "staging_table, driver, fid_column, columns, source_count, chunks_total) "
                   "VALUES (%s, 'L', 'gadm.l', 's', 'GPKG', 'fid', '[]', 1, 1)", (load.load_id,))
        db.execute("INSERT INTO geoload.chunks (load_id, layer, chunk_no, fid_first, fid_last, "
                   "features, weight, started_at) VALUES (%s, 'L', 0, 1, 1, 1, 1, now())",
                   (load.load_id,))
    assert loads.stalled(db, 1800) == []


def test_the_lookup_tables_cost_comes_back_typed_from_the_last_published_load(clean_db, db):
    assert loads.published_lookup(db, "timezone") is None
    older, newer, unpublished = _load(db, "timezone"), _load(db, "timezone"), _load(db, "timezone")
    loads.record_lookup(db, older.load_id, LookupCost("old__l1", 10, 0.5, 8192, 4096))
    loads.record_lookup(db, newer.load_id, LookupCost("new__l2", 20, 1.25, 16384, 8192))
    loads.record_lookup(db, unpublished.load_id, LookupCost("not__l3", 30, 2.0, 1, 1))
    for load in (older, newer):
        loads.mark_published(db, load.load_id, {}, [])
    assert loads.published_lookup(db, "timezone") == LookupCost("new__l2", 20, 1.25, 16384,
                                                                8192)
    assert one(db, "SELECT lookup->>'index_seconds' FROM geoload.loads WHERE load_id = %s",
               newer.load_id) == "1.25"
    assert loads.published_lookup(db, "gadm") is None
