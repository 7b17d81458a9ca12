"""The known places and the files drawn around them.

The places' zones are public facts; where timezonefinder is installed they are also
checked against the timezone-boundary-builder data it ships (real boundaries, so the
Baarle points are truly inside the enclaves they name).
"""

from __future__ import annotations

import zipfile

import pyogrio
import pytest
import shapely

from devtools.testdata.places import (
    GADM_FIELDS,
    TZ_STEM,
    load_places,
    make_places_files,
)

PLACES = load_places()


def test_the_known_places_agree_with_timezone_boundary_builder() -> None:
    finder = pytest.importorskip("timezonefinder").TimezoneFinder(in_memory=True)
    wrong = {p.name: finder.timezone_at(lng=p.lon, lat=p.lat) for p in PLACES
             if finder.timezone_at(lng=p.lon, lat=p.lat) != p.tzid}
    assert wrong == {}


def test_there_are_enclaves_oceans_and_dozens_of_cities() -> None:
    kinds = [p.kind for p in PLACES]
    assert kinds.count("city") >= 30 and kinds.count("sea") >= 3
    names = {p.name for p in PLACES}
    assert {"Büsingen am Hochrhein", "Baarle-Hertog", "Baarle-Nassau counter-enclave",
            "Llívia", "Kaliningrad", "Kykotsmovi", "Chinle"} <= names


def test_the_files_are_shaped_like_upstream(tmp_path) -> None:
    files = make_places_files(tmp_path)
    with zipfile.ZipFile(files.timezone_zip) as zf:
        assert {f"{TZ_STEM}.{ext}" for ext in ("shp", "shx", "dbf", "prj")} <= set(zf.namelist())
    tz = f"/vsizip/{files.timezone_zip}/{TZ_STEM}.shp"
    assert [name for name, _ in pyogrio.list_layers(tz)] == [TZ_STEM]
    assert list(pyogrio.read_info(tz)["fields"]) == ["tzid"]
    gpkg = f"/vsizip/{files.gadm_zip}/gadm_410-levels.gpkg"
    assert [name for name, _ in pyogrio.list_layers(gpkg)] == [f"ADM_{k}" for k in range(6)]
    for k, fields in enumerate(GADM_FIELDS):
        assert tuple(pyogrio.read_info(gpkg, layer=f"ADM_{k}")["fields"]) == fields


def test_the_zones_cover_the_world_once_and_the_enclaves_are_real(tmp_path) -> None:
    world = make_places_files(tmp_path).world
    zones = list(world.timezones.values())
    assert shapely.is_valid(zones).all()
    assert sum(z.area for z in zones) == pytest.approx(360 * 180, rel=1e-9)
    assert shapely.union_all(zones).area == pytest.approx(360 * 180, rel=1e-9)
    countries = {key[0]: geom for key, geom in world.levels[0].items()}
    switzerland, germany = countries["CHE"], countries["DEU"]
    busingen = shapely.Point(8.6903, 47.6964)
    assert germany.contains(busingen) and not switzerland.contains(busingen)
    assert any(part.interiors for part in shapely.get_parts(switzerland))  # Büsingen's hole
    assert shapely.get_num_geometries(countries["RUS"]) >= 2  # Kaliningrad apart
    assert shapely.get_num_geometries(countries["NLD"]) >= 2  # the counter-enclave
    assert shapely.get_num_geometries(countries["BEL"]) >= 2  # Baarle-Hertog
