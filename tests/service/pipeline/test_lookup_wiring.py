"""Issue 15, steps 1-2: each chunk cuts its lookup pieces in its own transaction, the last
finish indexes them, and the publish swaps them in with the data tables and stores the
change report.

Expectations come from PostGIS on the loaded data tables (the area of each feature), not
from the cutting code: the pieces of a feature must cover exactly its area, once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import psycopg

from service.pipeline.messages import CHUNK, FAILURE, FETCH, PLAN, PUBLISH, Next
from tests.conftest import new_upstream_version
from tests.support.driver import drain, new_run, run_step
from tests.support.pieces import gadm_pieces_off, pieces_off


def _start(settings, dataset: str) -> tuple[str, list[Next]]:
    run_id = new_run(settings, dataset)
    return run_id, [Next(FETCH, (run_id, dataset)), Next(PLAN, (run_id, dataset))]


def test_a_published_load_brings_its_lookup_table_indexed_and_registered(clean_db):
    settings = clean_db
    drain(settings, _start(settings, "timezone")[1])
    with psycopg.connect(settings.database_url) as db:
        assert pieces_off(db, "timezone.timezones", "timezone.timezone_lookup", "tzid") == []
        indexes = {r[0] for r in db.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'timezone' "
            "AND tablename = 'timezone_lookup'")}
        assert indexes == {"timezone_lookup_geom_idx", "timezone_lookup_cell_idx"}
        # a point well inside a zone answers that zone, through the SQL function
        tzid, lon, lat = db.execute(
            "SELECT tzid, ST_X(p), ST_Y(p) FROM (SELECT tzid, ST_PointOnSurface(geom) p "
            "FROM timezone.timezones ORDER BY tzid LIMIT 1) s").fetchone()
        found = db.execute("SELECT key FROM geoload.lookup(%s, %s)", (lon, lat)).fetchall()
        assert (tzid,) in found
        built = db.execute("SELECT lookup FROM geoload.loads").fetchone()[0]
        assert built["pieces"] > 0 and built["table_bytes"] > 0 and built["index_bytes"] > 0
        report = db.execute("SELECT first_load, counts FROM geoload.change_reports").fetchone()
        assert report == (True, {"added": 0, "removed": 0, "renamed": 0, "reshaped": 0})
        assert db.execute("SELECT tablename FROM pg_tables "
                          "WHERE schemaname = 'geoload_staging'").fetchall() == []


def test_a_redelivered_chunk_adds_no_pieces(clean_db):
    settings = clean_db
    _, first = _start(settings, "gadm")
    held = drain(settings, first, stop_before=CHUNK)
    chunk = held[0]
    rest = held[1:]
    nexts = run_step(settings, chunk).next
    again = run_step(settings, chunk)  # at-least-once: the same message, delivered twice
    assert again.result["status"] == "skipped"
    drain(settings, rest + list(nexts))
    with psycopg.connect(settings.database_url) as db:
        assert gadm_pieces_off(db) == {}


def test_a_second_version_swaps_lookup_and_data_together(clean_db, upstream_files, tmp_path):
    settings = clean_db
    drain(settings, _start(settings, "timezone")[1])
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path):
        held = drain(settings, _start(settings, "timezone")[1], stop_before=PUBLISH)
        with psycopg.connect(settings.database_url) as db:
            # before the publish, lookups answer from version 1's pieces, beside version 1
            assert pieces_off(db, "timezone.timezones", "timezone.timezone_lookup",
                                    "tzid") == []
        drain(settings, held)
    with psycopg.connect(settings.database_url) as db:
        assert pieces_off(db, "timezone.timezones", "timezone.timezone_lookup",
                                "tzid") == []
        first, report = db.execute("SELECT first_load, counts FROM geoload.change_reports "
                                   "ORDER BY load_id DESC LIMIT 1").fetchone()
        assert not first and sum(report.values()) > 0


def test_a_failed_load_drops_its_staging_lookup_table(clean_db):
    settings = clean_db
    run_id, first = _start(settings, "timezone")
    drain(settings, first, stop_before=CHUNK)
    with psycopg.connect(settings.database_url) as db:
        staged = {r[0] for r in db.execute("SELECT tablename FROM pg_tables "
                                           "WHERE schemaname = 'geoload_staging'")}
    assert any("_lookup__" in t for t in staged)
    args = [run_id, "timezone", "combined-shapefile-with-oceans", 0]
    run_step(settings, Next(FAILURE, (CHUNK, args, "BadSource", "boom")))
    with psycopg.connect(settings.database_url) as db:
        assert db.execute("SELECT tablename FROM pg_tables "
                          "WHERE schemaname = 'geoload_staging'").fetchall() == []


def test_a_load_without_lookup_tables_drops_the_older_ones(clean_db, upstream_files, tmp_path):
    """GEOLOAD_LOOKUP=0: no pieces are cut, and the published load takes the older
    version's lookup table away with its data tables, so no lookup answers from it."""
    settings = clean_db
    drain(settings, _start(settings, "timezone")[1])
    root, _ = upstream_files
    without = replace(settings, lookup_tables=False)
    with new_upstream_version(root, tmp_path):
        drain(without, _start(without, "timezone")[1])
    with psycopg.connect(settings.database_url) as db:
        assert db.execute("SELECT to_regclass('timezone.timezone_lookup')").fetchone() == (None,)
        assert db.execute("SELECT count(*) FROM geoload.lookup(0, 0)").fetchone() == (0,)
        assert db.execute("SELECT lookup_staging FROM geoload.loads ORDER BY load_id"
                          ).fetchall() == [("timezone__timezone_lookup__l1",), (None,)]
        assert db.execute("SELECT tablename FROM pg_tables "
                          "WHERE schemaname = 'geoload_staging'").fetchall() == []


def test_a_reader_never_sees_lookup_pieces_of_one_version_beside_tables_of_another(
        clean_db, upstream_files, tmp_path):
    """One statement reads both tables, over and over, while the publish swaps version 2
    in (other zones than version 1): their key sets must always agree."""
    settings = clean_db
    drain(settings, _start(settings, "timezone")[1])
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path):
        held = drain(settings, _start(settings, "timezone")[1], stop_before=PUBLISH)
    seen: list[tuple[bool, int]] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(settings.database_url, autocommit=True) as db:
            while not stop.is_set():
                try:
                    seen.append(_both(db))
                except psycopg.Error as exc:
                    errors.append(exc)
                    return

    def waited(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(seen) < n and not errors and time.monotonic() < deadline:
            time.sleep(0.01)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        waited(3)
        drain(settings, held)
        waited(len(seen) + 3)
    finally:
        stop.set()
        reader.join(30)
    assert errors == []
    assert all(agree for agree, _ in seen), [s for s in seen if not s[0]][:3]
    assert len({rows for _, rows in seen}) == 2  # the reader saw both versions


def _both(db: psycopg.Connection) -> tuple[bool, int]:
    """Do the lookup table's keys and the data table's agree, in one statement?"""
    row = db.execute("SELECT (SELECT array_agg(DISTINCT key ORDER BY key) "
                     "FROM timezone.timezone_lookup) = (SELECT array_agg(tzid ORDER BY tzid) "
                     "FROM timezone.timezones WHERE geom IS NOT NULL), "
                     "(SELECT count(*) FROM timezone.timezones)").fetchone()
    assert row is not None
    return bool(row[0]), int(row[1])


def _gids(db: psycopg.Connection, level: int) -> tuple[str, ...]:
    return tuple(sorted(k for (k,) in db.execute(
        f"SELECT gid_{level} FROM gadm.adm_{level}")))  # noqa: S608 - a number


def _stored_report(settings, run_id: str):
    from service.ledger import changes as stored

    with psycopg.connect(settings.database_url) as db:
        row = db.execute("SELECT load_id FROM geoload.loads WHERE run_id = %s",
                         (run_id,)).fetchone()
        assert row is not None
        return stored.load(db, row[0])


def test_a_level_that_comes_or_goes_is_reported_whole(clean_db):
    """Levels 0-1, then 0-2 (adm_2 new: every area added), then 0-1 again (adm_2 not in
    the version any more: every area removed). The same file each time: levels 0 and 1
    have no changes, and their layers are in the stored report all the same."""
    settings = clean_db
    for levels in ((0, 1), (0, 1, 2)):
        run_id = new_run(settings, "gadm", levels=levels)
        drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))])
    with psycopg.connect(settings.database_url) as db:
        level_2 = _gids(db, 2)
    assert len(level_2) > 10
    grown = _stored_report(settings, run_id)
    assert [(layer.source, layer.added, layer.removed) for layer in grown.layers] == [
        ("gadm.adm_0", (), ()), ("gadm.adm_1", (), ()), ("gadm.adm_2", level_2, ())]
    assert grown.counts() == {"added": len(level_2), "removed": 0, "renamed": 0,
                              "reshaped": 0}

    run_id = new_run(settings, "gadm", levels=(0, 1))
    drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))])
    shrunk = _stored_report(settings, run_id)
    assert [(layer.source, layer.added, layer.removed) for layer in shrunk.layers] == [
        ("gadm.adm_0", (), ()), ("gadm.adm_1", (), ()), ("gadm.adm_2", (), level_2)]
    assert shrunk.counts() == {"added": 0, "removed": len(level_2), "renamed": 0,
                               "reshaped": 0}
