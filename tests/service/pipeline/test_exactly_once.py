"""Exactly-once effects of chunks and publish under duplicate and concurrent delivery."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, Next
from tests.support.driver import drain, new_run, run_step


def test_duplicate_chunks_never_duplicate_rows(clean_db):
    settings = clean_db
    run_id = new_run(settings, "gadm")
    chunks = drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))],
                   stop_before=CHUNK)
    assert len(chunks) > 6
    first = chunks[0]
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: run_step(settings, first), range(4)))
    statuses = sorted(o.result["status"] for o in outcomes)
    assert statuses == ["loaded", "skipped", "skipped", "skipped"]
    with psycopg.connect(settings.database_url) as db:
        staging, expected = db.execute(
            "SELECT staging_table, c.features FROM geoload.load_layers l JOIN geoload.chunks c "
            "USING (load_id, layer) WHERE c.layer = %s AND c.chunk_no = %s",
            (first.args[2], first.args[3])).fetchone()
        rows = db.execute(f'SELECT count(*), count(DISTINCT fid) FROM geoload_staging."{staging}"'
                          ).fetchone()
    assert rows == (expected, expected)
    # every duplicate of the rest, in any order, still publishes exactly the source
    finishes = drain(settings, chunks + chunks[::-1], stop_before=FINISH)
    assert len({f.args for f in finishes}) == 6
    drain(settings, finishes + finishes)
    with psycopg.connect(settings.database_url) as db:
        status, layers = db.execute("SELECT status, layers FROM geoload.loads WHERE run_id = %s",
                                    (run_id,)).fetchone()
        counts = {t: db.execute(f"SELECT count(*), count(DISTINCT fid) FROM gadm.{t}").fetchone()
                  for t in ("adm_3", "adm_4")}
    assert status == "published"
    for table, (total, distinct) in counts.items():
        assert total == distinct == layers[table.upper()]["source"]
