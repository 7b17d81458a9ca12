"""Point lookup against known places: the library, the SQL function and the command line.

The expected zone, country and first-level division of each place come from
``tests/data/known_places.json`` (public facts), never from the code under test. The
files are drawn around those places (:mod:`devtools.testdata.places`); the same places
are also checked on the tables ogr2ogr loads from the same files, with plain SQL.
"""

from __future__ import annotations

import json
import random

import psycopg
import pytest

from devtools.testdata.places import Place, load_places
from service import lookup
from service.lookup import BadPoint
from service.settings import Settings
from tests.conftest import run_cli
from tests.support.ogr import OGR
from tests.support.places import Loaded

PLACES = load_places()
TZ = "timezone.timezones"


def _ids(place: Place) -> str:
    return place.name


def level_hits(answer: lookup.Answer, level: int) -> list[lookup.Hit]:
    return [h for h in answer.hits if h.dataset == "gadm" and h.level == level]


@pytest.mark.parametrize("place", PLACES, ids=_ids)
def test_every_known_place_is_in_its_zone_country_and_division(published: Loaded,
                                                                place: Place) -> None:
    with psycopg.connect(published.url) as conn:
        answer = lookup.lookup(conn, place.lat, place.lon)
    assert answer.keys(TZ) == [place.tzid]
    if place.kind == "sea":
        assert [h for h in answer.hits if h.dataset == "gadm"] == []
    else:
        assert [h.key for h in level_hits(answer, 0)] == [place.iso3]
        assert [h.name for h in level_hits(answer, 0)] == [place.country]
        assert [h.name for h in level_hits(answer, 1)] == [place.admin1]
        assert level_hits(answer, 1)[0].key.startswith(f"{place.iso3}.")
        assert len(level_hits(answer, 2)) == 1
    assert not any(h.on_border for h in answer.hits)


@pytest.mark.parametrize("place", PLACES, ids=_ids)
def test_ogr2ogr_tables_agree_with_the_known_places(published: Loaded, place: Place) -> None:
    """The cross-check: plain ST_Intersects on what ogr2ogr loaded from the same files."""
    with psycopg.connect(published.url) as conn:
        zones = [r[0] for r in conn.execute(
            f"SELECT tzid FROM {OGR}.timezones WHERE ST_Intersects(geom, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326))", (place.lon, place.lat))]
        countries = [r[0] for r in conn.execute(
            f"SELECT gid_0 FROM {OGR}.adm_0 WHERE ST_Intersects(geom, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326))", (place.lon, place.lat))]
    assert zones == [place.tzid]
    assert countries == ([place.iso3] if place.iso3 else [])


@pytest.mark.parametrize(("lat", "lon", "zones", "countries"), [
    # Büsingen's western edge: Germany's enclave and Switzerland share it
    (47.695, 8.665, ["Europe/Busingen", "Europe/Zurich"], ["CHE", "DEU"]),
    # the meridian 97.5°W at sea, between the ocean zones of UTC-6 and UTC-7
    (-20.0, -97.5, ["Etc/GMT+6", "Etc/GMT+7"], []),
    # a corner of the Baarle-Hertog enclave: Belgium and the Netherlands
    (51.445, 4.945, ["Europe/Amsterdam", "Europe/Brussels"], ["BEL", "NLD"]),
])
def test_a_point_on_a_shared_border_gets_every_area_flagged(
        published: Loaded, lat: float, lon: float, zones: list[str],
        countries: list[str]) -> None:
    with psycopg.connect(published.url) as conn:
        answer = lookup.lookup(conn, lat, lon)
    assert sorted(answer.keys(TZ)) == zones
    assert sorted(h.key for h in level_hits(answer, 0)) == countries
    assert all(h.on_border for h in answer.hits if h.source in (TZ, "gadm.adm_0"))


def test_a_point_just_inside_an_enclave_is_not_on_its_border(published: Loaded) -> None:
    with psycopg.connect(published.url) as conn:
        answer = lookup.lookup(conn, 47.695, 8.665 + 1e-9)
    assert answer.keys(TZ) == ["Europe/Busingen"]
    assert not any(h.on_border for h in answer.hits)


def test_a_point_in_no_area_gets_empty_results(published: Loaded) -> None:
    """At sea there is no GADM area; with nothing published there is nothing at all."""
    with psycopg.connect(published.url) as conn:
        at_sea = lookup.lookup(conn, -48.8767, -123.3933)
        assert at_sea.datasets().keys() == {"timezone"}
        with conn.transaction(force_rollback=True):
            for table in ("gadm.gadm_lookup", "timezone.timezone_lookup"):
                conn.execute(f"COMMENT ON TABLE {table} IS NULL")
            nothing = lookup.lookup(conn, 47.3769, 8.5417)
            assert nothing.hits == ()
            assert nothing.to_json()["results"] == {}
            assert conn.execute("SELECT count(*) FROM geoload.lookup(8.5417, 47.3769)"
                                ).fetchone() == (0,)


@pytest.mark.parametrize(("lat", "lon"), [(90.5, 0), (-91, 0), (0, 180.01), (0, -200),
                                          (float("nan"), 0), ("north", 0)])
def test_a_point_outside_lon_lat_bounds_is_a_usage_error(published: Loaded, lat: object,
                                                         lon: object) -> None:
    with psycopg.connect(published.url) as conn, pytest.raises(BadPoint) as caught:
        lookup.lookup(conn, lat, lon)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert "What to do" in str(caught.value)


def test_the_sql_function_answers_and_refuses_bad_points(published: Loaded) -> None:
    with psycopg.connect(published.url, autocommit=True) as conn:
        rows = conn.execute("SELECT dataset, source, level, key, name, on_border "
                            "FROM geoload.lookup(1.9817, 42.4636)").fetchall()
        assert ("timezone", TZ, 0, "Europe/Madrid", None, False) in rows
        assert [r[4] for r in rows if r[1] == "gadm.adm_0"] == ["Spain"]
        assert [r[4] for r in rows if r[1] == "gadm.adm_2"] == ["Llívia"]
        joined = conn.execute(
            "SELECT p.name, l.key FROM (VALUES ('Kaliningrad', 20.4522, 54.7104), "
            "('Moscow', 37.6173, 55.7558)) p(name, lon, lat), geoload.lookup(p.lon, p.lat) l "
            "WHERE l.source = %s ORDER BY 1", (TZ,)).fetchall()
        assert joined == [("Kaliningrad", "Europe/Kaliningrad"), ("Moscow", "Europe/Moscow")]
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SELECT * FROM geoload.lookup(0, 95)")


def test_a_batch_answers_in_input_order(published: Loaded) -> None:
    points = [p for p in PLACES for _ in range(3)]
    random.Random(7).shuffle(points)
    with psycopg.connect(published.url) as conn:
        answers = lookup.lookup_many(conn, [(p.lat, p.lon) for p in points], batch=50)
    assert [(a.lat, a.lon) for a in answers] == [(p.lat, p.lon) for p in points]
    assert [a.keys(TZ) for a in answers] == [[p.tzid] for p in points]


def test_lookup_reads_only_published_tables(staged: Loaded, published: Loaded) -> None:
    """A lookup table still in the staging schema is no one's: readers don't see it."""
    with psycopg.connect(published.url, autocommit=True) as conn:
        with conn.transaction():
            lookup.build(conn, [lookup.SourceTable(
                "geoload_staging.timezone__timezones__l1", "timezone.timezones_other", 0,
                "tzid")], "geoload_staging.timezone_lookup__l2", dataset="timezone")
        try:
            answer = lookup.lookup(conn, 47.3769, 8.5417)
            assert {h.source for h in answer.hits} == {TZ, "gadm.adm_0", "gadm.adm_1",
                                                       "gadm.adm_2"}
        finally:
            conn.execute("DROP TABLE geoload_staging.timezone_lookup__l2")


def test_the_command_line_prints_text_json_and_exit_codes(published: Loaded,
                                                          settings: Settings) -> None:
    text = run_cli("service.lookup", "47.6964", "8.6903", settings=settings)
    assert text.returncode == 0, text.stderr
    assert "Europe/Busingen" in text.stdout and "Büsingen am Hochrhein" in text.stdout
    out = run_cli("service.lookup", "-33.8688", "151.2093", "--json", settings=settings)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert [h["tzid"] for h in answer["results"]["timezone"]] == ["Australia/Sydney"]
    assert [h["name_1"] for h in answer["results"]["gadm"] if h["level"] == 1] == [
        "New South Wales"]
    bad = run_cli("service.lookup", "95", "0", settings=settings)
    assert bad.returncode == 2
    assert "latitude 95.0 is outside [-90, 90]" in bad.stderr
    down = run_cli("service.lookup", "1", "2", settings=settings,
                   DATABASE_URL="postgresql://postgres@127.0.0.1:9/nowhere")
    assert down.returncode == 3
    assert "PostGIS can't be reached" in down.stderr


def test_the_command_line_batch_writes_csv_in_input_order(published: Loaded,
                                                          settings: Settings,
                                                          tmp_path) -> None:
    points = [p for p in PLACES if p.kind != "city"] + [PLACES[0]]
    source = tmp_path / "points.csv"
    source.write_text("name,lat,lon\n" + "".join(f'"{p.name}",{p.lat},{p.lon}\n'
                                                 for p in points), encoding="utf-8")
    done = run_cli("service.lookup", "--csv", str(source), settings=settings)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["lat", "lon"] and header[-1] == "on_border"
    assert {"tzid", "gid_0", "name_0", "gid_1", "name_1", "gid_2", "name_2"} <= set(header)
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert [(float(r["lat"]), float(r["lon"])) for r in rows] == [(p.lat, p.lon)
                                                                   for p in points]
    assert [r["tzid"] for r in rows] == [p.tzid for p in points]
    assert [r["gid_0"] for r in rows] == [p.iso3 or "" for p in points]

    source.write_text("latitude,longitude\n1,2\n", encoding="utf-8")
    bad = run_cli("service.lookup", "--csv", str(source), settings=settings)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "no lat and lon columns" in bad.stderr


def test_points_on_grid_lines_get_the_same_answers(published: Loaded) -> None:
    """Pieces lie in one cell of a 256 × 256 lon/lat grid; a point on a grid line is
    looked up another way (GiST). Both ways must agree with the known places."""
    zurich, cairo = 8.4375, 30.9375  # longitudes on grid lines: -180 + k × 360/256
    cairo_lat = -90 + 171 * 180 / 256  # 30.234375, a latitude on a grid line
    with psycopg.connect(published.url) as conn:
        on_lines = lookup.lookup_many(conn, [(47.3769, zurich), (cairo_lat, cairo)])
    assert [a.keys(TZ) for a in on_lines] == [["Europe/Zurich"], ["Africa/Cairo"]]
    assert [[h.key for h in level_hits(a, 0)] for a in on_lines] == [["CHE"], ["EGY"]]


def test_lookup_can_keep_to_some_datasets(published: Loaded) -> None:
    with psycopg.connect(published.url) as conn:
        answer = lookup.lookup(conn, 54.7104, 20.4522, datasets=["timezone"])
        rows = conn.execute("SELECT DISTINCT dataset FROM geoload.lookup_many("
                            "ARRAY[20.4522], ARRAY[54.7104], ARRAY['gadm'])").fetchall()
    assert {h.dataset for h in answer.hits} == {"timezone"}
    assert answer.keys(TZ) == ["Europe/Kaliningrad"]
    assert rows == [("gadm",)]
