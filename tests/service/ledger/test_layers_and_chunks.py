"""A plan saved once and read back typed; a chunk's counters and errors, once per attempt."""

from __future__ import annotations

import psycopg
import pytest

from service.data_warnings import MISSING_FIELD, DataWarning, DroppedFeature, from_json
from service.identity import worker_id
from service.ledger import chunks, layers, loads, runs
from service.ledger.records import Load
from service.load.columns import Column
from service.load.records import Chunk, ChunkCounts, LayerPlan, PlannedLayer
from tests.support.db import one

PLAN = LayerPlan("ADM_1", "gadm.adm_1", "gadm__adm_1__l1", "GPKG", "fid",
                 [Column("fid", "__fid", "bigint"), Column("gid_1", "GID_1", "text"),
                  Column("nl_name_1", None, "text")], 5)
CHUNKS = [Chunk(1, 3, 3, 3000), Chunk(4, 5, 2, 9000)]
WARNING = DataWarning(MISSING_FIELD, "ADM_1", "NL_NAME_1", "field NL_NAME_1 is missing")


@pytest.fixture()
def planned(clean_db, db) -> Load:
    run_id = runs.create(db, ["gadm"], {})
    load = loads.get(db, run_id, "gadm")
    assert load is not None
    with db.transaction():
        layers.save_plan(db, load.load_id, [PlannedLayer(PLAN, CHUNKS, [WARNING])])
    return load


def test_the_plan_comes_back_as_it_was_made(planned, db):
    state = layers.get(db, planned.load_id, "ADM_1")
    assert state is not None and state.plan == PLAN
    assert (state.status, state.chunks_total, state.chunks_done, state.loaded) == (
        "loading", 2, 0, 0)
    assert not state.all_chunks_loaded and not state.ready
    assert [c.planned for c in (chunks.get(db, planned.load_id, "ADM_1", n) for n in (0, 1))
            if c] == CHUNKS
    status, total, warnings = one(db, "SELECT status, layers_total, warnings FROM "
                                      "geoload.loads WHERE load_id = %s", planned.load_id)
    assert (status, total, from_json(warnings)) == ("loading", 1, [WARNING])


def test_pending_chunks_are_sent_heaviest_first(planned, db):
    assert chunks.pending(db, planned.load_id) == [("ADM_1", 1), ("ADM_1", 0)]


def _complete(db: psycopg.Connection, load: Load, chunk_no: int, loaded: int) -> tuple[int, int]:
    counts = ChunkCounts(loaded, 1, 2, 0, {"read": 0.1}, dropped=1,
                         dropped_features=[DroppedFeature(chunk_no + 1, "X.1_1", "malformed WKB")])
    with db.transaction():
        return chunks.complete(db, load.load_id, "ADM_1", chunk_no, counts, 0.5)


def test_the_chunk_that_completes_a_layer_is_the_one_told(planned, db):
    assert _complete(db, planned, 1, 2) == (1, 2)
    assert _complete(db, planned, 0, 3) == (2, 2)
    state = layers.get(db, planned.load_id, "ADM_1")
    assert state is not None and state.all_chunks_loaded
    assert (state.loaded, state.empty, state.repaired, state.dropped) == (5, 2, 4, 2)
    assert chunks.pending(db, planned.load_id) == []
    assert chunks.dropped_features(db, planned.load_id) == {"ADM_1": [
        DroppedFeature(1, "X.1_1", "malformed WKB"), DroppedFeature(2, "X.1_1", "malformed WKB")]}
    with db.transaction():
        assert layers.mark_ready(db, planned.load_id, "ADM_1", 8192, 0.2) == (1, 1)
    assert one(db, "SELECT status FROM geoload.loads WHERE load_id = %s",
               planned.load_id) == "indexing"


def test_every_failed_attempt_keeps_its_error(planned, db):
    for attempt in (1, 2):
        chunks.start_attempt(db, planned.load_id, "ADM_1", 0)
        chunks.attempt_failed(db, planned.load_id, "ADM_1", 0, "OperationalError",
                              f"lost the server ({attempt})")
    with db.transaction():  # the failure recorder's word on the last attempt, once it is dead
        chunks.fail(db, planned.load_id, "ADM_1", 0, "gave up", "OperationalError")
    status, attempts, error, errors = one(
        db, "SELECT status, attempts, error, errors FROM geoload.chunks "
            "WHERE load_id = %s AND chunk_no = 0", planned.load_id)
    assert (status, attempts, error) == ("failed", 2, "gave up")
    assert [(e["attempt"], e["error"], e["worker"]) for e in errors] == [
        (1, "lost the server (1)", worker_id()), (2, "gave up", worker_id())]


def test_a_loaded_chunk_is_never_marked_failed(planned, db):
    _complete(db, planned, 0, 3)
    chunks.start_attempt(db, planned.load_id, "ADM_1", 0)  # a late duplicate
    with db.transaction():
        chunks.fail(db, planned.load_id, "ADM_1", 0, "duplicate failed", "BadSource")
    state = chunks.get(db, planned.load_id, "ADM_1", 0)
    assert state is not None and state.loaded
    assert one(db, "SELECT attempts, error FROM geoload.chunks WHERE load_id = %s "
                   "AND chunk_no = 0", planned.load_id) == (0, None)
