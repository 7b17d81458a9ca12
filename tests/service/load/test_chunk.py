"""Copying one chunk, the stage alone: read → repair → COPY into a staging table, no ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import shapely

from service import catalog
from service.errors import BadSource
from service.load import staging
from service.load.chunk import INDEX_MAX_BYTES, Unloadable, copy_chunk
from service.load.plan import plan_layer
from service.load.records import PlannedLayer
from tests.support import craft
from tests.support.craft import good_files
from tests.support.db import one

COLLAPSED = shapely.MultiPolygon([shapely.Polygon([(0, 0), (1, 1), (2, 2), (0, 0)])])
GADM = catalog.get("gadm")
ADM_1 = GADM.layer("ADM_1")
LENIENT = Unloadable(strict=False, feature_key=ADM_1.feature_key)


def _source(tmp_path: Path, release: str, *edits: craft.Edit) -> Path:
    good = good_files(tmp_path / "good", release)
    table = craft.read_layers(good.gadm_gpkg, ["ADM_1"])["ADM_1"]
    return craft.write_gpkg(tmp_path / "adm_1.gpkg", {"ADM_1": craft.chain(*edits)(table)})


def _planned(db: psycopg.Connection, settings, path: Path) -> PlannedLayer:
    planned = plan_layer(GADM, ADM_1, path, 1, replace(settings, chunk_features=1))
    staging.ensure_schemas(db, GADM.schemas)
    staging.create(db, planned.plan.staging_table, planned.plan.columns)
    return planned


def _copy(db: psycopg.Connection, path: Path, planned: PlannedLayer, n: int,
          unloadable: Unloadable = LENIENT, progress: list[int] | None = None):
    with db.transaction():
        return copy_chunk(db, path, planned.plan, planned.chunks[n], unloadable,
                          indexed={ADM_1.key, *ADM_1.indexes},
                          progress=None if progress is None else progress.append)


def test_every_chunk_copies_its_fid_range_and_keeps_a_bad_geometry_as_null(clean_db, db,
                                                                         tmp_path):
    path = _source(tmp_path, clean_db.timezone_release, craft.set_geometry(1, COLLAPSED))
    gid_1 = craft.read_layers(path, ["ADM_1"])["ADM_1"].column("GID_1").to_pylist()
    planned = _planned(db, clean_db, path)
    assert len(planned.chunks) > 1
    counts = [_copy(db, path, planned, n) for n in range(len(planned.chunks))]
    table = f'geoload_staging."{planned.plan.staging_table}"'
    assert [c.loaded for c in counts] == [c.features for c in planned.chunks]
    assert one(db, f"SELECT count(*), count(DISTINCT fid), count(geom) FROM {table}") == (
        planned.plan.source_count, planned.plan.source_count, planned.plan.source_count - 1)
    assert one(db, f"SELECT fid FROM {table} WHERE geom IS NULL") == 2
    assert one(db, f"SELECT count(*) FROM {table} WHERE NOT ST_IsValid(geom)") == 0
    assert [c.dropped for c in counts] == [0, 1] + [0] * (len(counts) - 2)  # fid 2: 2nd chunk
    (dropped,) = counts[1].dropped_features
    assert (dropped.fid, dropped.key) == (2, gid_1[1])
    assert set(counts[1].stages) == {"read", "repair", "copy"}


def test_a_strict_load_refuses_the_chunk_naming_the_fid_and_copies_nothing(clean_db, db,
                                                                          tmp_path):
    path = _source(tmp_path, clean_db.timezone_release, craft.set_geometry(1, COLLAPSED))
    planned = _planned(db, clean_db, path)
    with pytest.raises(BadSource, match=r"1 feature\(s\) has no polygonal part.*\(fid 2\)"):
        _copy(db, path, planned, 1, Unloadable(strict=True, feature_key=ADM_1.feature_key))
    assert one(db, f'SELECT count(*) FROM geoload_staging."{planned.plan.staging_table}"') == 0


def test_a_key_too_long_to_index_is_refused_before_the_index_build(clean_db, db, tmp_path):
    path = _source(tmp_path, clean_db.timezone_release,
                   craft.set_value("GID_1", 2, craft.text(INDEX_MAX_BYTES + 1)))
    planned = _planned(db, clean_db, path)
    with pytest.raises(BadSource, match=rf"field .GID_1. of fid 3 is {INDEX_MAX_BYTES + 1:,} "):
        _copy(db, path, planned, 2)


def test_a_file_that_holds_fewer_features_than_planned_is_refused(clean_db, db, tmp_path):
    path = _source(tmp_path, clean_db.timezone_release)
    planned = _planned(db, clean_db, path)
    shorter = replace(planned.chunks[0], features=planned.chunks[0].features + 1)
    with pytest.raises(BadSource, match="the cached file changed under the run"), \
            db.transaction():
        copy_chunk(db, path, planned.plan, shorter, LENIENT, indexed=())
