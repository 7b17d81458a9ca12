"""GEOLOAD_KEEP_VERSIONS keeps the last N versions under geoload_archive; ``enqueue
--rollback`` swaps the newest kept one back in, atomically, as a load of its own."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import psycopg

from service.pipeline.messages import FETCH, PLAN, Next
from tests.conftest import ConcurrentReader, new_upstream_version, run_cli, table_counts
from tests.support.driver import drain, new_run

TABLE = "timezone.timezones"


def publish(settings, **choices) -> int:
    run_id = new_run(settings, "timezone", **choices)
    drain(settings, [Next(FETCH, (run_id, "timezone")), Next(PLAN, (run_id, "timezone"))])
    with psycopg.connect(settings.database_url) as db:
        load_id, status = db.execute("SELECT load_id, status FROM geoload.loads "
                                     "WHERE run_id = %s", (run_id,)).fetchone()
    assert status == "published"
    return int(load_id)


def kept(settings) -> tuple[list[int], list[str]]:
    with psycopg.connect(settings.database_url) as db:
        ids = [r[0] for r in db.execute("SELECT DISTINCT load_id FROM geoload.archive "
                                        "ORDER BY 1").fetchall()]
        tables = sorted(r[0] for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'geoload_archive'"))
    return ids, tables


def answers(settings, points: list[tuple[float, float]], source: str = TABLE
            ) -> set[tuple[int, str]]:
    """(point, tzid) pairs ``geoload.lookup_many`` gives for the live ``source``."""
    with psycopg.connect(settings.database_url) as db:
        rows = db.execute("SELECT i, key FROM geoload.lookup_many(%s, %s) "
                          "WHERE source = %s", ([x for x, _ in points], [y for _, y in points],
                                                source)).fetchall()
    return {(int(i), str(key)) for i, key in rows}


def zones_at(settings, table: str, points: list[tuple[float, float]]) -> set[tuple[int, str]]:
    """(point, tzid) pairs read from a data table itself, the lookup's ground truth."""
    with psycopg.connect(settings.database_url) as db:
        rows = db.execute(
            f"SELECT p.i, t.tzid FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY "  # noqa: S608
            f"p(x, y, i) JOIN {table} t ON ST_Intersects(t.geom, "
            "ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))",
            ([x for x, _ in points], [y for _, y in points])).fetchall()
    return {(int(i), str(key)) for i, key in rows}


def inner_points(settings, table: str) -> list[tuple[float, float]]:
    with psycopg.connect(settings.database_url) as db:
        return [(float(x), float(y)) for x, y in db.execute(
            f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM {table} "  # noqa: S608
            "WHERE geom IS NOT NULL AND NOT ST_IsEmpty(geom) ORDER BY tzid LIMIT 40) q")]


def test_keep_two_versions_then_roll_back_under_a_reader(clean_db, upstream_files, tmp_path):
    settings = replace(clean_db, keep_versions=2)
    root, manifest = upstream_files
    first = publish(settings)
    with new_upstream_version(root, tmp_path) as other:
        second = publish(settings)
    third = publish(settings)
    assert kept(settings)[0] == [first, second]
    with new_upstream_version(root, tmp_path):
        fourth = publish(settings)
    ids, tables = kept(settings)
    assert ids == [second, third]  # the oldest was dropped, its lookup table too: two are kept
    assert tables == sorted(f"timezone__{table}__2026c__l{load}" for load in (second, third)
                            for table in ("timezone_lookup", "timezones"))
    assert table_counts(settings, [TABLE])[TABLE] == other.timezone.features
    points = inner_points(settings, f"geoload_archive.timezone__timezones__2026c__l{third}")
    # the kept lookup tables are not answered from: only the live version's
    assert answers(settings, points) == zones_at(settings, TABLE, points)

    # The CLI runs without GEOLOAD_KEEP_VERSIONS (the workers have 2): it keeps them all.
    with ConcurrentReader(settings, [TABLE]) as reader:
        done = run_cli("service.enqueue", "--rollback", "timezone", "--json",
                       settings=replace(settings, keep_versions=0))
        time.sleep(0.3)  # the reader reads the restored version too
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["restored_load"] == third
    assert not reader.errors
    assert reader.seen[TABLE] == {other.timezone.features, manifest.timezone.features}
    assert table_counts(settings, [TABLE])[TABLE] == manifest.timezone.features
    assert kept(settings)[0] == [second, fourth]  # the replaced version is kept in turn
    with psycopg.connect(settings.database_url) as db:
        origin, status, restored, live = db.execute(
            "SELECT r.origin, l.status, l.restored_from, v.load_id FROM geoload.loads l "
            "JOIN geoload.runs r USING (run_id) LEFT JOIN geoload.live v "
            "ON v.dataset = l.dataset AND v.target_schema = '' WHERE l.run_id = %s",
            (result["run_id"],)).fetchone()
        load_id = db.execute("SELECT load_id FROM geoload.loads WHERE run_id = %s",
                             (result["run_id"],)).fetchone()[0]
    assert (origin, status, restored, live) == ("rollback", "published", third, load_id)

    # Lookups answer from the restored version, not from the one it replaced.
    replaced = zones_at(settings, f"geoload_archive.timezone__timezones__2026c__l{fourth}",
                        points)
    restored_zones = zones_at(settings, TABLE, points)
    assert restored_zones and restored_zones != replaced  # the versions differ at these points
    assert answers(settings, points) == restored_zones

    # Rolling back again (roll forward) brings the replaced version and its lookup back.
    again = run_cli("service.enqueue", "--rollback", "timezone", "--json",
                    settings=replace(settings, keep_versions=0))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["restored_load"] == fourth
    assert answers(settings, points) == replaced
    assert kept(settings)[0] == [second, load_id]


def test_a_rollback_with_nothing_kept_is_a_clear_usage_error(clean_db, upstream_files):
    publish(clean_db)
    done = run_cli("service.enqueue", "--rollback", "timezone", settings=clean_db)
    assert done.returncode == 2
    assert "no earlier version of timezone is kept" in done.stderr
    assert "GEOLOAD_KEEP_VERSIONS" in done.stderr


def test_the_dataset_page_reports_the_space_kept_versions_take(clean_db, upstream_files,
                                                               tmp_path):
    from service.dashboard import api
    from service.dashboard.context import Context

    settings = replace(clean_db, keep_versions=1)
    first = publish(settings)
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path):
        publish(settings)
    data = {d["dataset"]: d for d in api.datasets(Context(settings), {})["datasets"]}
    (version,) = data["timezone"]["kept"]
    with psycopg.connect(settings.database_url) as db:
        size = db.execute(  # the data table and the lookup table kept with it
            "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) t",
            ([f"geoload_archive.timezone__{table}__2026c__l{first}"
              for table in ("timezones", "timezone_lookup")],)).fetchone()[0]
    assert (version["load_id"], version["release"], version["bytes"]) == (first, "2026c", size)
    assert size > 0


def test_versions_are_kept_and_rolled_back_per_schema(clean_db, upstream_files, tmp_path):
    settings = replace(clean_db, keep_versions=1)
    root, manifest = upstream_files
    mine_first = publish(settings, schema="mine")
    with new_upstream_version(root, tmp_path) as other:
        publish(settings, schema="mine")
        default = publish(settings)
    assert kept(settings)[1] == [f"mine__{table}__2026c__l{mine_first}"
                                 for table in ("timezone_lookup", "timezones")]
    done = run_cli("service.enqueue", "--rollback", "timezone", "--schema", "mine", "--json",
                   settings=settings, GEOLOAD_KEEP_VERSIONS="1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["restored_load"] == mine_first
    counts = table_counts(settings, ["mine.timezones", TABLE])
    assert counts == {"mine.timezones": manifest.timezone.features,
                      TABLE: other.timezone.features}
    with psycopg.connect(settings.database_url) as db:
        live = db.execute("SELECT load_id FROM geoload.live WHERE dataset = 'timezone' "
                          "AND target_schema = ''").fetchone()[0]
    assert live == default  # the default schema's version was not touched
    points = inner_points(settings, "mine.timezones")
    assert answers(settings, points, "mine.timezones") == zones_at(settings, "mine.timezones",
                                                                   points)
    assert answers(settings, points) == zones_at(settings, TABLE, points)


def test_a_version_loaded_without_lookup_table_keeps_the_one_it_replaced(clean_db,
                                                                          upstream_files,
                                                                          tmp_path):
    """GEOLOAD_LOOKUP=0: the replaced version's lookup table is kept with it, not dropped, so
    rolling back to it brings its lookups back; the version without one answers nothing."""
    settings = replace(clean_db, keep_versions=1)
    root, _ = upstream_files
    first = publish(settings)
    points = inner_points(settings, TABLE)
    with_lookup = zones_at(settings, TABLE, points)
    with new_upstream_version(root, tmp_path):
        second = publish(replace(settings, lookup_tables=False))
    assert kept(settings)[1] == [f"timezone__{table}__2026c__l{first}"
                                 for table in ("timezone_lookup", "timezones")]
    assert answers(settings, points) == set()  # no lookup of another version answers
    done = run_cli("service.enqueue", "--rollback", "timezone", settings=settings)
    assert done.returncode == 0, done.stderr
    assert answers(settings, points) == with_lookup
    assert kept(settings)[1] == [f"timezone__timezones__2026c__l{second}"]
    forward = run_cli("service.enqueue", "--rollback", "timezone", settings=settings)
    assert forward.returncode == 0, forward.stderr
    assert answers(settings, points) == set()
    assert len(kept(settings)[1]) == 2  # the first version, its lookup table with it
