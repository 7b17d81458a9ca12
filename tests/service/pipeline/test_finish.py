"""finish_layer: indexes and ANALYZE on the staging table, once; the last layer sends publish."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from devtools.testdata.mirror import mirror_path, timezone_url
from devtools.testdata.server import serve
from devtools.testdata.timezone import STEM
from service.errors import BadSource
from service.load import names
from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, PUBLISH, Next
from tests.support import craft
from tests.support.craft import good_files
from tests.support.db import one
from tests.support.driver import drain, new_run, run_step


def _until_finish(settings, dataset: str) -> tuple[str, list[Next], list[Next]]:
    run_id = new_run(settings, dataset)
    chunks = drain(settings, [Next(FETCH, (run_id, dataset)), Next(PLAN, (run_id, dataset))],
                   stop_before=CHUNK)
    finishes = drain(settings, chunks, stop_before=FINISH)
    return run_id, chunks, finishes


def _layer(db: psycopg.Connection, run_id: str, layer: str) -> tuple:
    return one(db, "SELECT x.status, x.staging_table, x.table_bytes, x.index_seconds "
                   "FROM geoload.load_layers x JOIN geoload.loads l USING (load_id) "
                   "WHERE l.run_id = %s AND x.layer = %s", run_id, layer)


def test_a_layer_gets_its_indexes_and_statistics_and_the_last_one_sends_publish(clean_db, db):
    run_id, _, finishes = _until_finish(clean_db, "gadm")
    assert len({f.args for f in finishes}) == 6
    outcomes = [run_step(clean_db, step) for step in finishes]
    assert [o.next for o in outcomes[:-1]] == [[]] * 5
    assert outcomes[-1].next == [Next(PUBLISH, (run_id, "gadm"))]
    layer = finishes[0].args[2]
    status, table, size, seconds = _layer(db, run_id, layer)
    assert status == "ready" and seconds > 0
    assert size == one(db, "SELECT pg_total_relation_size(format('%%I.%%I', %s::text, "
                           "%s::text)::regclass)", names.STAGING, table)
    indexes = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = "
                                        "%s AND tablename = %s", (names.STAGING, table))}
    level = int(layer.rsplit("_", 1)[1])
    expected = {names.index_name(table, role) for role in names.index_roles(
        "fid", list(dict.fromkeys(["gid_0", f"gid_{max(level - 1, 0)}", f"gid_{level}"])))}
    assert indexes == expected
    assert one(db, "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
                   "FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
               names.STAGING, table)


def test_finish_before_every_chunk_loaded_does_nothing_and_a_duplicate_resends_publish(
        clean_db, db):
    run_id, chunks, _ = _until_finish(clean_db, "timezone")
    layer = chunks[0].args[2]
    db.execute("UPDATE geoload.chunks SET status = 'pending' WHERE chunk_no = 0")
    db.execute("UPDATE geoload.load_layers SET chunks_done = chunks_done - 1")
    early = run_step(clean_db, Next(FINISH, (run_id, "timezone", layer)))
    assert early.result["reason"] == "layer is not fully loaded yet" and early.next == []
    assert _layer(db, run_id, layer)[0] == "loading"
    db.execute("UPDATE geoload.chunks SET status = 'loaded' WHERE chunk_no = 0")
    db.execute("UPDATE geoload.load_layers SET chunks_done = chunks_done + 1")
    first = run_step(clean_db, Next(FINISH, (run_id, "timezone", layer)))
    again = run_step(clean_db, Next(FINISH, (run_id, "timezone", layer)))
    assert first.result["status"] == "indexed"
    assert again.result["reason"] == "layer already indexed"
    assert first.next == again.next == [Next(PUBLISH, (run_id, "timezone"))]


def test_a_duplicate_key_fails_the_layer_as_the_sources_fault(clean_db, tmp_path):
    good = good_files(tmp_path / "good", clean_db.timezone_release)
    table = craft.read_layers(f"/vsizip/{good.timezone_zip}/{STEM}.shp")[STEM]
    first = table.column("tzid")[0].as_py()
    root = tmp_path / "served"
    craft.craft_timezone(good.timezone_zip, root / mirror_path(timezone_url(
        clean_db.timezone_release)), craft.set_value("tzid", 1, first))
    with serve(root) as server:
        settings = replace(clean_db, mirror=server.url, cache_dir=tmp_path / "cache")
        run_id, _, finishes = _until_finish(settings, "timezone")
        with pytest.raises(BadSource, match="PostgreSQL refused the data") as caught:
            run_step(settings, finishes[0])
    assert "[timezone]" in str(caught.value) and first in str(caught.value)
