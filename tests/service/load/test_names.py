"""Staging and retired table names: two loads never share one, whatever the catalog's names."""

from __future__ import annotations

import pytest
from psycopg import sql

from service.ledger import schema
from service.load import staging
from service.load.columns import Column
from service.load.names import STAGING
from service.publish.swap import retired_name

LONG_DATASET = "natural_earth_admin_1_states_provinces"
LONG_TABLE = "natural_earth.admin_1_states_provinces_lakes"
COLUMNS = [Column("fid", "__fid", "bigint")]


def _bytes(name: str) -> int:
    return len(name.encode())


@pytest.mark.parametrize(("dataset", "table"), [
    (LONG_DATASET, LONG_TABLE),
    ("gadm", "gadm." + "ä" * 40),  # 80 bytes in 40 characters
])
def test_long_names_keep_the_load_apart_and_fit_postgresql(dataset, table):
    first, second = (staging.staging_name(dataset, table, n) for n in (17, 18))
    assert first != second
    assert first.endswith("__l17") and second.endswith("__l18")
    old = [retired_name(dataset, table.split(".", 1)[1], n) for n in (17, 18)]
    assert old[0] != old[1] and old[0].endswith("__retired_l17")
    assert max(map(_bytes, (first, second, *old))) <= 63
    assert first.startswith(dataset[:20]) and old[0].startswith(dataset[:20])


def test_names_that_fit_are_unchanged():
    assert staging.staging_name("gadm", "gadm.adm_2", 17) == "gadm__adm_2__l17"
    assert retired_name("gadm", "adm_2", 17) == "gadm__adm_2__retired_l17"


def test_two_tables_cut_to_the_same_prefix_stay_apart():
    one = staging.staging_name(LONG_DATASET, LONG_TABLE + "_a", 5)
    two = staging.staging_name(LONG_DATASET, LONG_TABLE + "_b", 5)
    assert one != two


def test_a_second_load_does_not_drop_the_first_loads_staging_table(db, clean_db):
    """create() drops a table of the same name first: a shared name lost the other load's rows."""
    schema.ensure(db)
    first, second = (staging.staging_name(LONG_DATASET, LONG_TABLE, n) for n in (17, 18))
    staging.create(db, first, COLUMNS)
    db.execute(sql.SQL("INSERT INTO {} (fid) VALUES (1)").format(staging.staged(first)))
    staging.create(db, second, COLUMNS)
    rows = db.execute(sql.SQL("SELECT count(*) FROM {}").format(staging.staged(first))).fetchone()
    assert rows == (1,)
    tables = {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                       (STAGING,))}
    assert {first, second} <= tables
