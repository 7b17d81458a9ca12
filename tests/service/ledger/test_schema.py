"""geoload's tables: created on a fresh database, upgraded in place, cheap when current."""

from __future__ import annotations

import psycopg
import pytest

from service.ledger import schema
from tests.support.db import one

TABLES = {"runs", "loads", "live", "load_layers", "chunks", "refreshes", "load_parts",
          "archive", "change_reports", "changes"}


def _tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'geoload'")
    return {r[0] for r in rows}


def test_a_fresh_database_gets_every_table_and_the_version(clean_db, db):
    db.execute("DROP SCHEMA geoload CASCADE")
    schema.ensure(db)
    assert _tables(db) == TABLES
    assert one(db, "SELECT obj_description('geoload'::regnamespace, 'pg_namespace')") == (
        schema.VERSION)
    assert one(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'geoload_staging'") == 1


def test_the_lookup_functions_come_with_the_schema_and_answer_before_any_load(clean_db, db):
    """The schema's one author creates geoload.lookup and geoload.lookup_many too: before
    any lookup table exists, a point is in no area, and bad input is refused."""
    db.execute("DROP SCHEMA geoload CASCADE")
    schema.ensure(db)
    assert one(db, "SELECT count(*) FROM geoload.lookup(8.54, 47.37)") == 0
    assert one(db, "SELECT count(*) FROM geoload.lookup_many(ARRAY[0, 1]::float8[], "
                   "ARRAY[0, 1]::float8[])") == 0
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("SELECT * FROM geoload.lookup(0, 95)")


def test_an_older_schema_gets_the_lookup_functions(clean_db, db):
    """A version 8 database, whose lookup functions a publish used to create."""
    db.execute("DROP FUNCTION geoload.lookup(float8, float8)")
    db.execute("DROP FUNCTION geoload.lookup_many(float8[], float8[], text[])")
    db.execute("COMMENT ON SCHEMA geoload IS 'geoload bookkeeping, schema version 8'")
    schema.ensure(db)
    assert one(db, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'geoload'::regnamespace "
                   "AND proname IN ('lookup', 'lookup_many')") == 2


def test_an_older_schema_is_upgraded_in_place_and_keeps_its_rows(clean_db, db):
    """A database of version 5 (no refreshes table: refresh made it itself) with a run in it."""
    db.execute("INSERT INTO geoload.runs (run_id, datasets) VALUES ('old-run', '{gadm}')")
    db.execute("DROP TABLE geoload.refreshes")
    db.execute("COMMENT ON SCHEMA geoload IS 'geoload bookkeeping, schema version 5'")
    schema.ensure(db)
    assert _tables(db) == TABLES
    assert one(db, "SELECT count(*) FROM geoload.runs WHERE run_id = 'old-run'") == 1


def test_ensure_on_a_current_schema_changes_nothing(clean_db, db):
    db.execute("INSERT INTO geoload.runs (run_id, datasets) VALUES ('kept', '{gadm}')")
    before = one(db, "SELECT xmin::text FROM geoload.runs WHERE run_id = 'kept'")
    db.execute("DROP TABLE geoload.refreshes")  # a current version runs no DDL, so it stays gone
    schema.ensure(db)
    assert "refreshes" not in _tables(db)
    assert one(db, "SELECT xmin::text FROM geoload.runs WHERE run_id = 'kept'") == before
