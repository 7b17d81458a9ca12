"""Reading a fid range as batches, from a shapefile and a GeoPackage written by GDAL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import shapely

from service.read import batches, layer_info

NAMES = ["Zürich", "東京都", "Łódź", "Ærøskøbing", "ﻣﺼﺮ", "Reykjavík", "Kraków", "São Paulo",
         "Île-de-France", "Ōsaka"]


def squares() -> list[bytes]:
    return [shapely.to_wkb(shapely.box(i, 0, i + 1, 1)) for i in range(len(NAMES))]


@pytest.fixture(params=["ESRI Shapefile", "GPKG"])
def source(request, tmp_path) -> Path:
    path = tmp_path / ("places.shp" if request.param == "ESRI Shapefile" else "places.gpkg")
    table = pa.table({"name": NAMES, "geometry": pa.array(squares(), pa.binary())})
    pyogrio.write_arrow(table, path, layer="places", driver=request.param,
                        geometry_name="geometry", geometry_type="Polygon", crs="EPSG:4326")
    return path


def open_files() -> set[str]:
    return {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}


def test_a_range_arrives_in_batches_and_the_file_is_closed_before_the_last(source):
    info = layer_info(source, "places")
    first = 1 if info.driver == "GPKG" else 0   # GeoPackage fids start at 1
    reading = batches(source, info.name, first + 2, first + 8, ["name"], driver=info.driver,
                      fid_column=info.fid_column, batch_rows=3, expected=7)
    got = list(next(reading) for _ in range(3))
    assert not any(f.startswith(str(source.with_suffix(""))) for f in open_files())
    assert next(reading, None) is None
    assert [len(b.wkb) for b in got] == [3, 3, 1]
    names = [n for b in got for n in b.attributes.column("name").to_pylist()]
    fids = [f for b in got for f in b.attributes.column("__fid").to_pylist()]
    assert names == NAMES[2:9] and fids == list(range(first + 2, first + 9))
    wkb = np.concatenate([b.wkb for b in got])
    assert list(np.concatenate([b.wkb_bytes for b in got])) == [len(w) for w in wkb]
    # a shapefile stores outer rings clockwise: the same polygons, maybe another orientation
    assert shapely.equals(shapely.from_wkb(wkb), shapely.from_wkb(squares()[2:9])).all()


def test_without_an_expected_count_every_batch_is_read_to_the_end(source):
    info = layer_info(source, "places")
    first = 1 if info.driver == "GPKG" else 0
    got = list(batches(source, info.name, first, first + 9, ["name"], driver=info.driver,
                       fid_column=info.fid_column, batch_rows=4))
    assert [len(b.wkb) for b in got] == [4, 4, 2]
    assert [n for b in got for n in b.attributes.column("name").to_pylist()] == NAMES
