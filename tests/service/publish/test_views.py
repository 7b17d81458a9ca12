"""Users' objects on the live tables: views follow the new version, the rest stops the publish.

Issue 12, item 3. Users build views on ``gadm.*`` and ``timezone.*``; a swap that left
them bound to the retired table could neither drop it nor show the new data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from service.errors import PermanentError
from service.live import Live
from service.pipeline import failure
from service.pipeline.messages import FETCH, PLAN, PUBLISH, Next
from tests.conftest import ConcurrentReader, new_upstream_version
from tests.support.driver import drain, new_run, run_step

OWNER = f"geoload_test_view_owner_{os.getpid()}"
READER = f"geoload_test_view_reader_{os.getpid()}"
NAMES = "timezone.zone_names"
SLASHED = "SELECT count(*) FROM timezone.timezones WHERE tzid LIKE '%/%'"


def load(settings, *, until: str | None = None) -> list[Next]:
    run_id = new_run(settings, "timezone")
    return drain(settings, [Next(FETCH, (run_id, "timezone")), Next(PLAN, (run_id, "timezone"))],
                 stop_before=until)


def one(db: psycopg.Connection, query: str, *params: object) -> object:
    row = db.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def leftovers(db: psycopg.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT tablename FROM pg_tables "
                                     "WHERE schemaname = 'geoload_staging'")]


@pytest.fixture()
def db(clean_db) -> Iterator[psycopg.Connection]:
    """A first version loaded, a schema ``reports`` and two roles: a views' owner and a reader."""
    load(clean_db)
    with psycopg.connect(clean_db.database_url, autocommit=True) as conn:
        for role in (OWNER, READER):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE SCHEMA reports AUTHORIZATION {}").format(
            sql.Identifier(OWNER)))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA timezone TO {}; "
                             "GRANT USAGE ON SCHEMA timezone, reports TO {}; "
                             "GRANT SELECT ON timezone.timezones TO {}").format(
            sql.Identifier(OWNER), sql.Identifier(READER), sql.Identifier(OWNER)))
        try:
            yield conn
        finally:
            conn.execute("DROP SCHEMA IF EXISTS reports CASCADE")
            for role in (OWNER, READER):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_views_are_recreated_on_the_new_table_with_owner_grants_comments_and_options(
        clean_db, db, upstream_files, tmp_path):
    owner, reader = sql.Identifier(OWNER), sql.Identifier(READER)
    db.execute(sql.SQL("SET ROLE {}").format(owner))
    db.execute("CREATE VIEW timezone.zone_names WITH (security_barrier) AS "
               "SELECT tzid, geom FROM timezone.timezones WHERE tzid LIKE '%/%'")
    db.execute("CREATE VIEW reports.zone_count AS SELECT count(*) AS zones "
               "FROM timezone.zone_names")  # a view on the view
    db.execute("CREATE VIEW reports.named AS SELECT tzid FROM timezone.timezones "
               "WHERE tzid <> '' WITH LOCAL CHECK OPTION")
    db.execute("COMMENT ON VIEW timezone.zone_names IS 'zones with a slash'")
    db.execute("COMMENT ON COLUMN timezone.zone_names.tzid IS 'IANA id'")
    db.execute(sql.SQL("GRANT SELECT ON timezone.zone_names TO {}").format(reader))
    db.execute(sql.SQL("GRANT SELECT (zones) ON reports.zone_count TO {} WITH GRANT OPTION"
                       ).format(reader))
    db.execute("RESET ROLE")
    old = one(db, SLASHED)
    root, _ = upstream_files

    with new_upstream_version(root, tmp_path), \
            ConcurrentReader(clean_db, [NAMES, "reports.zone_count"]) as reader_loop:
        load(clean_db)

    new = one(db, SLASHED)
    assert new != old
    assert one(db, "SELECT count(*) FROM timezone.zone_names") == new
    assert one(db, "SELECT zones FROM reports.zone_count") == new
    assert not reader_loop.errors, reader_loop.errors[:3]
    assert reader_loop.seen[NAMES] <= {old, new}
    assert leftovers(db) == []  # the retired table was dropped: nothing depends on it
    assert one(db, "SELECT array_agg(DISTINCT c.relowner::regrole::text) FROM pg_class c "
                   "WHERE c.oid IN ('timezone.zone_names'::regclass, "
                   "'reports.zone_count'::regclass, 'reports.named'::regclass)") == [OWNER]
    assert one(db, "SELECT reloptions FROM pg_class WHERE oid = 'timezone.zone_names'::regclass"
               ) == ["security_barrier=true"]
    assert one(db, "SELECT reloptions FROM pg_class WHERE oid = 'reports.named'::regclass"
               ) == ["check_option=local"]
    assert one(db, "SELECT obj_description('timezone.zone_names'::regclass, 'pg_class')"
               ) == "zones with a slash"
    assert one(db, "SELECT col_description('timezone.zone_names'::regclass, 1)") == "IANA id"
    assert one(db, "SELECT has_table_privilege(%s, 'timezone.zone_names', 'SELECT')", READER)
    assert not one(db, "SELECT has_table_privilege(%s, 'reports.zone_count', 'SELECT')", READER)
    assert one(db, "SELECT has_column_privilege(%s, 'reports.zone_count', 'zones', "
                   "'SELECT WITH GRANT OPTION')", READER)


def test_a_materialized_view_or_foreign_key_fails_the_load_before_the_swap(
        clean_db, db, upstream_files, tmp_path):
    db.execute("CREATE MATERIALIZED VIEW reports.zones AS SELECT tzid FROM timezone.timezones")
    db.execute("CREATE TABLE reports.visits (tzid text REFERENCES timezone.timezones (tzid))")
    db.execute("CREATE FUNCTION reports.zones_now() RETURNS bigint LANGUAGE sql "
               "BEGIN ATOMIC SELECT count(*) FROM timezone.timezones; END")
    db.execute("CREATE VIEW reports.defaulted AS SELECT tzid FROM timezone.timezones")
    db.execute("ALTER VIEW reports.defaulted ALTER COLUMN tzid SET DEFAULT 'Etc/UTC'")
    db.execute("CREATE VIEW timezone.plain AS SELECT tzid FROM timezone.timezones")
    before = one(db, "SELECT count(*) FROM timezone.timezones")
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path):
        (publish,) = set(load(clean_db, until=PUBLISH))

    with pytest.raises(PermanentError) as refused:
        run_step(clean_db, publish)

    error = str(refused.value)
    assert error.startswith("[timezone] ")
    assert "materialized view reports.zones" in error
    assert "constraint visits_tzid_fkey on table reports.visits" in error
    assert "function reports.zones_now()" in error
    assert "view reports.defaulted (it has INSTEAD OF triggers, rules or column defaults)" in error
    assert "timezone.plain" not in error  # a plain view is re-created, not in the way
    assert "What to do: " in error and "enqueue timezone again" in error
    assert one(db, "SELECT count(*) FROM timezone.timezones") == before  # no swap happened
    failure.record_failure(clean_db, Live(clean_db), PUBLISH, list(publish.args),
                           type(refused.value).__name__, error)
    assert one(db, "SELECT status FROM geoload.loads ORDER BY load_id DESC LIMIT 1") == "failed"
    assert leftovers(db) == []
    assert one(db, "SELECT count(*) FROM reports.zones") == before


def test_a_view_the_new_table_no_longer_fits_fails_the_load_before_the_swap(
        clean_db, db, upstream_files, tmp_path):
    db.execute("ALTER TABLE timezone.timezones ADD COLUMN note text")  # not in the new version
    db.execute("CREATE VIEW reports.notes AS SELECT tzid, note FROM timezone.timezones")
    before = one(db, "SELECT count(*) FROM reports.notes")
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path):
        (publish,) = set(load(clean_db, until=PUBLISH))

    with pytest.raises(PermanentError, match=r"view reports.notes \(as its owner postgres: "
                                             r"column \w+.note does not exist\)"):
        run_step(clean_db, publish)

    assert one(db, "SELECT count(*) FROM reports.notes") == before
    assert one(db, "SELECT count(*) FROM timezone.timezones") == before
