"""What a REPEATABLE READ or SERIALIZABLE reader sees across a swap (issue 12, item 4).

PostgreSQL resolves a table's name against the current catalog, not against the
transaction's snapshot, while the rows it returns are those visible to the snapshot.
The README's guarantees section states what follows; these tests show it.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, PUBLISH, Next
from service.publish import swap
from tests.conftest import new_upstream_version
from tests.support.driver import drain, new_run, run_step

TABLE = "timezone.timezones"


def load(settings, *, until: str | None = None) -> list[Next]:
    run_id = new_run(settings, "timezone")
    return drain(settings, [Next(FETCH, (run_id, "timezone")), Next(PLAN, (run_id, "timezone"))],
                 stop_before=until)


def snapshot(settings, isolation: str = "REPEATABLE READ") -> psycopg.Connection:
    """A transaction whose snapshot is taken now, holding no lock on the dataset's tables."""
    conn = psycopg.connect(settings.database_url)
    conn.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
    conn.execute("SELECT 1")
    return conn


def count(conn: psycopg.Connection) -> int:
    row = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


def loaded_so_far(settings) -> int:
    with psycopg.connect(settings.database_url) as db:
        row = db.execute("SELECT sum(c.features) FROM geoload.chunks c JOIN geoload.loads l "
                         "USING (load_id) WHERE c.status = 'loaded' AND l.status <> 'published'"
                         ).fetchone()
    assert row is not None
    return int(row[0] or 0)


def test_a_snapshot_older_than_the_swap_reads_the_new_table_as_of_its_snapshot(
        clean_db, upstream_files, tmp_path):
    settings = replace(clean_db, chunk_features=10)  # several chunks, loaded one by one
    load(settings)
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path) as manifest:
        chunks = load(settings, until=CHUNK)
    assert len(chunks) >= 2
    before_load = snapshot(settings)
    drain(settings, chunks[:1], stop_before=FINISH)
    mid_load = snapshot(settings)
    part = loaded_so_far(settings)
    (publish_step,) = set(drain(settings, chunks[1:], stop_before=PUBLISH))
    after_load = snapshot(settings, "SERIALIZABLE")

    run_step(settings, publish_step)

    new = manifest.timezone.features
    assert 0 < part < new
    assert count(before_load) == 0        # the new table, none of whose rows it can see
    assert count(mid_load) == part        # the rows of the chunks loaded before its snapshot
    assert count(after_load) == new       # every chunk committed before its snapshot
    with psycopg.connect(settings.database_url) as read_committed:
        assert count(read_committed) == new
    for conn in (before_load, mid_load, after_load):
        conn.close()


def test_a_snapshot_reader_that_read_the_old_table_keeps_it_and_holds_the_swap(
        clean_db, upstream_files, tmp_path, monkeypatch):
    settings = clean_db
    load(settings)
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path) as manifest:
        (publish_step,) = set(load(settings, until=PUBLISH))
    reader = snapshot(settings)
    old = count(reader)
    monkeypatch.setattr(swap, "LOCK_TIMEOUT", "300ms")

    with pytest.raises(psycopg.errors.LockNotAvailable):
        run_step(settings, publish_step)  # retried later, as a worker would
    assert count(reader) == old
    reader.commit()
    run_step(settings, publish_step)

    assert count(reader) == manifest.timezone.features
    reader.close()
