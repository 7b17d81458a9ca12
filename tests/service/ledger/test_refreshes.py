"""The refresh's claims: one winner per (dataset, version), handed on only when it lapsed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from service.ledger import loads, refreshes, runs
from service.ledger.records import ClaimHolder
from tests.support.db import one

VERSION = '2026c|etag:"abc"'


def _claim(url: str, claimer: str, stale_after_s: float = 600) -> ClaimHolder | None:
    with psycopg.connect(url, autocommit=True) as conn:
        return refreshes.claim(conn, "timezone", VERSION, claimer, stale_after_s)


def test_of_claimers_racing_for_one_version_exactly_one_wins(clean_db):
    with ThreadPoolExecutor(6) as pool:
        held = list(pool.map(lambda n: _claim(clean_db.database_url, f"scheduler-{n}"),
                             range(6)))
    winners = [n for n, holder in enumerate(held) if holder is None]
    assert len(winners) == 1
    assert {h.claimed_by for h in held if h is not None} == {f"scheduler-{winners[0]}"}


def test_a_claim_whose_run_failed_is_handed_on_and_one_that_loads_is_not(clean_db, db):
    assert _claim(clean_db.database_url, "first") is None
    run_id = runs.create(db, ["timezone"], {})
    refreshes.attach(db, [("timezone", VERSION)], run_id)
    assert _claim(clean_db.database_url, "second") == ClaimHolder(run_id, "first")
    load = loads.get(db, run_id, "timezone")
    assert load is not None
    loads.fail(db, load.load_id, "boom", "BadSource", "fetch_source")
    assert _claim(clean_db.database_url, "third") is None
    assert one(db, "SELECT claimed_by, attempts, run_id FROM geoload.refreshes") == (
        "third", 2, None)


def test_a_claim_never_started_is_taken_over_once_stale_or_released(clean_db, db):
    assert _claim(clean_db.database_url, "died") is None
    assert _claim(clean_db.database_url, "soon", stale_after_s=600) == ClaimHolder(None, "died")
    db.execute("UPDATE geoload.refreshes SET claimed_at = now() - interval '11 minutes'")
    assert _claim(clean_db.database_url, "later", stale_after_s=600) is None
    refreshes.release(db, [("timezone", VERSION)])
    assert one(db, "SELECT count(*) FROM geoload.refreshes") == 0


def test_what_the_refresh_compares_with(clean_db, db):
    published, loading = runs.create(db, ["timezone"], {"timezone": "2026b"}), runs.create(
        db, ["timezone"], {"timezone": "2026c"})
    db.execute("UPDATE geoload.loads SET status = 'published', finished_at = now(), "
               "etag = '\"old\"', sha256 = 'x' WHERE run_id = %s", (published,))
    db.execute("UPDATE geoload.loads SET status = 'loading', sha256 = 'y' WHERE run_id = %s",
               (loading,))
    last = refreshes.last_published(db, "timezone")
    assert last is not None and (last.run_id, last.etag, last.release) == (
        published, '"old"', "2026b")
    assert [k.run_id for k in refreshes.loading(db, "timezone")] == [loading]
    assert refreshes.release_published(db, "timezone", "2026b")
    assert not refreshes.release_published(db, "timezone", "2026c")
    assert refreshes.last_published(db, "gadm") is None
