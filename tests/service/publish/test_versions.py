"""GEOLOAD_KEEP_VERSIONS keeps the last N versions under geoload_archive; ``enqueue
--rollback`` swaps the newest kept one back in, atomically, as a load of its own."""

from __future__ import annotations

import json
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
    assert ids == [second, third]  # the oldest was dropped: two are kept
    assert tables == [f"timezone__timezones__2026c__l{second}",
                      f"timezone__timezones__2026c__l{third}"]
    assert table_counts(settings, [TABLE])[TABLE] == other.timezone.features

    with ConcurrentReader(settings, [TABLE]) as reader:
        done = run_cli("service.enqueue", "--rollback", "timezone", "--json",
                       settings=settings, GEOLOAD_KEEP_VERSIONS="2")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["restored_load"] == third
    assert not reader.errors
    assert reader.seen[TABLE] <= {other.timezone.features, manifest.timezone.features}
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
    with psycopg.connect(settings.database_url) as db:  # not the replaced version's lookup
        assert db.execute("SELECT to_regclass('timezone.timezone_lookup')").fetchone() == (None,)


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
        size = db.execute("SELECT pg_total_relation_size(%s::regclass)",
                          (f"geoload_archive.timezone__timezones__2026c__l{first}",)).fetchone()[0]
    assert (version["load_id"], version["release"], version["bytes"]) == (first, "2026c", size)
    assert size > 0


def test_versions_are_kept_and_rolled_back_per_schema(clean_db, upstream_files, tmp_path):
    settings = replace(clean_db, keep_versions=1)
    root, manifest = upstream_files
    mine_first = publish(settings, schema="mine")
    with new_upstream_version(root, tmp_path) as other:
        publish(settings, schema="mine")
        default = publish(settings)
    assert kept(settings)[1] == [f"mine__timezones__2026c__l{mine_first}"]
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
