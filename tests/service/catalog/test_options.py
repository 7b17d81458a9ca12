"""A load's options: resolved once by the producer, recorded, rebuilt the same on any host."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from service import catalog
from service.catalog.options import LoadOptions, parse_levels, resolve
from service.errors import ConfigError


def test_levels_and_schema_narrow_and_move_the_tables(settings):
    opts = resolve(catalog.get("gadm"), settings, levels=(0, 1, 2), schema="mine")
    applied = opts.apply(catalog.get("gadm"))
    assert [layer.table for layer in applied.layers] == ["mine.adm_0", "mine.adm_1", "mine.adm_2"]
    assert applied.schemas == ("mine",)
    assert catalog.get("gadm").layers[0].table == "gadm.adm_0"  # the catalog is untouched


def test_the_release_is_the_producers_and_survives_the_ledger_round_trip(settings):
    producer = replace(settings, timezone_release="2026f")
    opts = resolve(catalog.get("timezone"), producer)
    assert opts.release == "2026f" and "/2026f/" in (opts.url or "")
    again = LoadOptions.from_json(opts.to_json())
    assert again == opts
    # a worker whose own setting says otherwise still loads the recorded release
    worker = replace(settings, timezone_release="2026c")
    ds = again.apply(catalog.get("timezone")) if again else None
    assert ds is not None and "/2026f/" in ds.url(worker)


def test_levels_parse_as_ranges_and_lists():
    assert parse_levels("0-2") == (0, 1, 2)
    assert parse_levels("3,0-1") == (0, 1, 3)
    with pytest.raises(ConfigError, match="--levels"):
        parse_levels("one")


@pytest.mark.parametrize(("dataset", "kwargs", "message"), [
    ("gadm", {"levels": (7,)}, "no level 7"),
    ("timezone", {"levels": (0,)}, "no levels"),
    ("gadm", {"schema": "geoload"}, "can't hold"),
    ("gadm", {"schema": "Bad-Name"}, "can't hold"),
])
def test_impossible_choices_are_usage_errors(settings, dataset, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve(catalog.get(dataset), settings, **kwargs)


def test_the_catalogs_own_schema_is_the_default_load(settings):
    assert resolve(catalog.get("gadm"), settings, schema="gadm").schema is None


def test_a_retry_loads_what_the_retried_run_chose(clean_db):
    from service.ledger import loads, runs
    from service.pipeline.broker import make_broker
    from service.pipeline.start import start
    from tests.conftest import purge_queue

    chosen = resolve(catalog.get("gadm"), clean_db, levels=(0, 1), schema="mine",
                     countries=("NPL", "DZA"))
    broker = make_broker(clean_db)
    try:
        with psycopg.connect(clean_db.database_url, autocommit=True) as db:
            first = runs.create(db, ["gadm"], {}, options={"gadm": chosen})
            retry = start(clean_db, db, broker, [catalog.get("gadm")], retry_of=first)
            assert loads.options_of(db, retry.run_id) == {"gadm": chosen}
    finally:
        broker.close()
        purge_queue(clean_db)  # no worker here: the sent messages are dropped
