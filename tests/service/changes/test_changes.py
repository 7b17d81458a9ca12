"""The change report: known edits between two versions of a layer give exactly that report.

Expected areas are computed here from the edited shapes themselves (the strip a polygon
grew by, the enclave a release added), never by the code under test, which only sees
the two whole tables.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import shapely

from devtools.testdata.places import make_places_files
from service import changes
from service.changes import Compared, Renamed
from service.ledger import changes as stored
from service.settings import Settings
from tests.conftest import have, reset_database
from tests.support.ogr import ogr2ogr
from tests.support.places import CAMPIONE, LIVIA, gid_of, km2, release_two

LIVE, STAGED = "chg.adm_1", "geoload_staging.gadm__adm_1__l2"
NAMES = ("name_1", "varname_1", "nl_name_1")
SPEC = Compared(LIVE, STAGED, "gid_1", NAMES)
#: v1 rows: key -> (name_1, varname_1, lon/lat box)
V1 = {
    "AAA.1_1": ("Alpha", None, (0, 0, 1, 1)),
    "AAA.2_1": ("Beta", None, (2, 0, 3, 1)),
    "AAA.3_1": ("Gamma", None, (4, 0, 5, 1)),
    "AAA.4_1": ("Delta", None, (6, 0, 7, 1)),
    "AAA.6_1": ("Zeta", None, (10, 0, 11, 1)),
}
#: v2: Beta renamed (name and varname), Gamma grown by the strip 5..5.5, Delta gone,
#: Epsilon new, Zeta's ring starting at another corner (same shape, other bytes).
V2 = {
    "AAA.1_1": ("Alpha", None, (0, 0, 1, 1)),
    "AAA.2_1": ("Béta", "Beta", (2, 0, 3, 1)),
    "AAA.3_1": ("Gamma", None, (4, 0, 5.5, 1)),
    "AAA.5_1": ("Epsilon", None, (8, 0, 9, 1)),
    "AAA.6_1": ("Zeta", None, (10, 0, 11, 1)),
}


def _create(conn: psycopg.Connection, table: str, rows: dict, rotate: set[str]) -> None:
    conn.execute(f"CREATE TABLE {table} (fid serial PRIMARY KEY, gid_1 text, name_1 text, "
                 "varname_1 text, nl_name_1 text, geom geometry(MultiPolygon, 4326))")
    for key, (name, varname, box) in rows.items():
        ring = shapely.get_coordinates(shapely.box(*box)).tolist()[:-1]
        if key in rotate:
            ring = ring[1:] + ring[:1]
        geom = shapely.MultiPolygon([shapely.Polygon(ring)])
        conn.execute(f"INSERT INTO {table} (gid_1, name_1, varname_1, nl_name_1, geom) "
                     "VALUES (%s, %s, %s, 'NA', ST_GeomFromText(%s, 4326))",
                     (key, name, varname, geom.wkt))


@pytest.fixture()
def two_versions(clean_db: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(clean_db.database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS chg CASCADE; CREATE SCHEMA chg")
        _create(conn, LIVE, V1, set())
        _create(conn, STAGED, V2, {"AAA.6_1"})
        yield conn
        conn.execute("DROP SCHEMA chg CASCADE")


def test_known_edits_give_exactly_their_report(two_versions: psycopg.Connection) -> None:
    conn = two_versions
    report = changes.compare(conn, "gadm", 2, [SPEC])
    assert not report.first_load
    [layer] = report.layers
    assert layer.source == LIVE
    assert layer.added == ("AAA.5_1",)
    assert layer.removed == ("AAA.4_1",)
    assert layer.renamed == (Renamed("AAA.2_1", {"name_1": ("Beta", "Béta"),
                                                 "varname_1": (None, "Beta")}),)
    assert [r.key for r in layer.reshaped] == ["AAA.3_1", "AAA.6_1"]
    gamma, zeta = layer.reshaped
    assert gamma.area_before_km2 == pytest.approx(km2(conn, 4, 0, 5, 1), rel=1e-9)
    assert gamma.area_after_km2 == pytest.approx(km2(conn, 4, 0, 5.5, 1), rel=1e-9)
    assert gamma.symdiff_km2 == pytest.approx(km2(conn, 5, 0, 5.5, 1), rel=1e-9)
    assert 6000 < gamma.symdiff_km2 < 6300  # half a degree square at the equator
    assert zeta.symdiff_km2 == pytest.approx(0.0, abs=1e-6)
    assert zeta.area_before_km2 == pytest.approx(zeta.area_after_km2, rel=1e-12)
    assert report.counts() == {"added": 1, "removed": 1, "renamed": 1, "reshaped": 2}
    assert report.summary() == "gadm (load 2): 1 added, 1 removed, 1 renamed, 2 reshaped"
    shown = changes.text(report)
    assert "renamed  AAA.2_1: name_1 'Beta' -> 'Béta'; varname_1 None -> 'Beta'" in shown
    assert "added    AAA.5_1" in shown and "removed  AAA.4_1" in shown
    assert f"reshaped AAA.3_1: {gamma.area_before_km2:,.1f} -> " in shown


def test_a_report_is_stored_with_its_load_id_and_read_back(
        two_versions: psycopg.Connection) -> None:
    conn = two_versions
    report = changes.compare(conn, "gadm", 2, [SPEC])
    stored.save(conn, report)
    stored.save(conn, report)  # a redelivered publish stores it again: same rows
    assert stored.load(conn, 2) == report
    assert stored.load(conn, 3) is None
    counted = conn.execute("SELECT change, count(*) FROM geoload.changes WHERE load_id = 2 "
                           "GROUP BY 1 ORDER BY 1").fetchall()
    assert counted == [("added", 1), ("removed", 1), ("renamed", 1), ("reshaped", 2)]
    assert conn.execute("SELECT first_load, counts FROM geoload.change_reports "
                        "WHERE load_id = 2").fetchone() == (False, report.counts())


def test_the_first_load_has_no_report_and_says_so(clean_db: Settings) -> None:
    with psycopg.connect(clean_db.database_url, autocommit=True) as conn:
        report = changes.compare(conn, "gadm", 1, [Compared("gadm.adm_1", STAGED, "gid_1")])
        stored.save(conn, report)
        kept = stored.load(conn, 1)
    assert report.first_load and report.layers == ()
    assert kept == report
    assert "first load" in report.summary() and "no change report" in report.summary()
    assert changes.text(report) == report.summary()


# --- layers that come, go, or don't change ------------------------------------------------

#: level 0 in both versions, the same rows: a layer without changes
SAME = {"AAA": ("Aland", None, (0, 0, 11, 1))}
#: a level only the new version has, and one only the live version has
NEW_ONLY = {"AAA.1.1_1": ("One", None, (0, 0, 0.5, 1)), "AAA.1.2_1": ("Two", None, (0.5, 0, 1, 1)),
            "AAA.3.1_1": ("Three", None, (4, 0, 5, 1))}
LIVE_ONLY = {"AAA.1.1.1_1": ("Four", None, (0, 0, 0.5, 0.5)),
             "AAA.2.1.1_1": ("Five", None, (2, 0, 3, 1))}
LAYERS = [Compared("chg.adm_0", "geoload_staging.gadm__adm_0__l2", "gid_1", NAMES), SPEC,
          Compared("chg.adm_2", "geoload_staging.gadm__adm_2__l2", "gid_1", NAMES),
          Compared("chg.adm_3", None, "gid_1", NAMES)]


@pytest.fixture()
def layers_come_and_go(two_versions: psycopg.Connection) -> psycopg.Connection:
    """Beside adm_1's two versions: adm_0 unchanged, adm_2 new, adm_3 gone (the key
    column is ``gid_1`` in each, as :func:`_create` makes them)."""
    conn = two_versions
    _create(conn, "chg.adm_0", SAME, set())
    _create(conn, "geoload_staging.gadm__adm_0__l2", SAME, set())
    _create(conn, "geoload_staging.gadm__adm_2__l2", NEW_ONLY, set())
    _create(conn, "chg.adm_3", LIVE_ONLY, set())
    return conn


def test_a_layer_only_the_new_version_has_is_all_added(layers_come_and_go) -> None:
    report = changes.compare(layers_come_and_go, "gadm", 2, LAYERS)
    new = {layer.source: layer for layer in report.layers}["chg.adm_2"]
    assert new.added == ("AAA.1.1_1", "AAA.1.2_1", "AAA.3.1_1")
    assert (new.removed, new.renamed, new.reshaped) == ((), (), ())
    assert not report.first_load


def test_a_layer_the_new_version_lacks_is_all_removed(layers_come_and_go) -> None:
    report = changes.compare(layers_come_and_go, "gadm", 2, LAYERS)
    gone = {layer.source: layer for layer in report.layers}["chg.adm_3"]
    assert gone.removed == ("AAA.1.1.1_1", "AAA.2.1.1_1")
    assert (gone.added, gone.renamed, gone.reshaped) == ((), (), ())
    # adm_1's own edits (see V1, V2) plus the three areas of adm_2 and two of adm_3
    assert report.counts() == {"added": 4, "removed": 3, "renamed": 1, "reshaped": 2}


def test_a_layer_without_changes_is_kept_when_stored_and_read_back(layers_come_and_go) -> None:
    conn = layers_come_and_go
    report = changes.compare(conn, "gadm", 2, LAYERS)
    assert [layer.source for layer in report.layers] == ["chg.adm_0", LIVE, "chg.adm_2",
                                                         "chg.adm_3"]
    assert report.layers[0].counts() == {"added": 0, "removed": 0, "renamed": 0,
                                         "reshaped": 0}
    stored.save(conn, report)
    assert stored.load(conn, 2) == report
    assert "  chg.adm_0: 0 added, 0 removed, 0 renamed, 0 reshaped" in changes.text(
        stored.load(conn, 2))


# --- two generated releases of the known places' world -------------------------------------

def _load(url: str, files, schema: str, suffix: str) -> None:
    tz = f"/vsizip/{files.timezone_zip}/combined-shapefile-with-oceans.shp"
    gpkg = f"/vsizip/{files.gadm_zip}/gadm_410-levels.gpkg"
    ogr2ogr(url, tz, schema, name=f"timezones{suffix}")
    for k in range(3):
        ogr2ogr(url, gpkg, schema, layer=f"ADM_{k}", name=f"adm_{k}{suffix}")


def test_two_generated_releases_give_exactly_their_edits(clean_db: Settings, tmp_path) -> None:
    if not have("ogr2ogr"):
        pytest.skip("ogr2ogr (Debian's gdal-bin) is not installed")
    url = clean_db.database_url
    reset_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA gadm; CREATE SCHEMA timezone")
    _load(url, make_places_files(tmp_path / "v1"), "gadm", "")
    _load(url, release_two(tmp_path / "v2"), "geoload_staging", "__l2")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE gadm.timezones SET SCHEMA timezone")
        layers = [Compared("timezone.timezones", "geoload_staging.timezones__l2", "tzid")] + [
            Compared(f"gadm.adm_{k}", f"geoload_staging.adm_{k}__l2", f"gid_{k}",
                     ("country",) if k == 0 else (f"name_{k}", f"varname_{k}", f"nl_name_{k}"))
            for k in range(3)]
        report = changes.compare(conn, "places", 2, layers)
        by = {layer.source: layer for layer in report.layers}
        old, new = "gadm.adm_{}", "geoload_staging.adm_{}__l2"
        livia, campione = km2(conn, *LIVIA.box), km2(conn, *CAMPIONE.box)

        tz = by["timezone.timezones"]
        assert (tz.added, tz.removed, tz.renamed) == ((), (), ())
        assert {r.key: r.symdiff_km2 for r in tz.reshaped} == pytest.approx({
            "Europe/Madrid": livia, "Europe/Paris": livia,
            "Europe/Rome": campione, "Europe/Zurich": campione}, rel=1e-6)

        zero = by["gadm.adm_0"]
        assert (zero.added, zero.removed, zero.renamed) == ((), (), ())
        assert {r.key: r.symdiff_km2 for r in zero.reshaped} == pytest.approx(
            {"CHE": campione, "ESP": livia, "FRA": livia, "ITA": campione}, rel=1e-6)
        spain = next(r for r in zero.reshaped if r.key == "ESP")
        assert spain.area_before_km2 - spain.area_after_km2 == pytest.approx(livia, rel=1e-6)

        one = by["gadm.adm_1"]
        zurich = gid_of(conn, old.format(1), 1, "Zürich")
        assert one.added == (gid_of(conn, new.format(1), 1, "Lombardia"),)
        assert one.removed == ()
        assert one.renamed == (Renamed(zurich, {"name_1": ("Zürich", "Zurich")}),)
        assert {r.key: r.symdiff_km2 for r in one.reshaped} == pytest.approx({
            zurich: campione, gid_of(conn, old.format(1), 1, "Cataluña"): livia,
            gid_of(conn, old.format(1), 1, "Occitanie"): livia}, rel=1e-6)

        two = by["gadm.adm_2"]
        assert two.added == (gid_of(conn, new.format(2), 2, "Campione d'Italia"),)
        assert two.removed == (gid_of(conn, old.format(2), 2, "Llívia"),)
        assert two.renamed == ()
        assert {r.key: r.symdiff_km2 for r in two.reshaped} == pytest.approx({
            gid_of(conn, old.format(2), 2, "Zurich"): campione,
            gid_of(conn, old.format(2), 2, "Saillagouse"): livia}, rel=1e-6)
