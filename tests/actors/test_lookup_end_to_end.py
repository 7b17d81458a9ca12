"""Issue 15 end to end: files drawn around known places, served at upstream's URLs, loaded
by ``enqueue gadm timezone`` through RabbitMQ and two worker processes; then the lookup
through its three faces (CLI, the dashboard's API, SQL), cross-checked against what
ogr2ogr loads from the same files; then a second release with known edits, whose stored
change report must be exactly those edits.

Expectations come from ``tests/data/known_places.json`` (public facts) and from the
edits themselves (the boxes carved in or out, measured by PostGIS), never from the code
under test.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import requests

from devtools.testdata.places import PlacesFiles, load_places, make_places_files
from service.dashboard.app import create_app
from service.dashboard.server import serving
from tests.conftest import have, run_cli
from tests.support import browser
from tests.support.ogr import OGR, ogr2ogr
from tests.support.places import CAMPIONE, LIVIA, gid_of, km2, release_two
from tests.support.runs import enqueue_and_wait

pytestmark = pytest.mark.e2e

PLACES = load_places()
LEVELS = range(6)


@contextmanager
def serving_places(root: Path, files: PlacesFiles) -> Iterator[None]:
    """Upstream serves ``files`` at its URLs until the block ends."""
    targets = [(root / "gadm/gadm4.1/gadm_410-levels.zip", files.gadm_zip),
               (next(root.glob("evansiroky/**/timezones-with-oceans.shapefile.zip")),
                files.timezone_zip)]
    for target, new in targets:
        target.rename(target.with_name(target.name + ".orig"))
        shutil.copyfile(new, target)
    try:
        yield
    finally:
        for target, _ in targets:
            target.with_name(target.name + ".orig").replace(target)


def _ogr_load(url: str, files: PlacesFiles) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {OGR} CASCADE; CREATE SCHEMA {OGR}")
    ogr2ogr(url, f"/vsizip/{files.timezone_zip}/combined-shapefile-with-oceans.shp", OGR,
            name="timezones")
    for k in LEVELS:
        ogr2ogr(url, f"/vsizip/{files.gadm_zip}/gadm_410-levels.gpkg", OGR,
                layer=f"ADM_{k}", name=f"adm_{k}")


def _expected(place) -> dict[str, str]:
    """What the CSV row of a known place must say, from the facts file."""
    row = {"tzid": place.tzid}
    if place.kind != "sea":
        row.update({"gid_0": place.iso3, "name_0": place.country, "name_1": place.admin1})
    else:
        row.update({"gid_0": "", "name_0": "", "name_1": ""})
    return row


def test_lookup_after_a_pipeline_load_and_the_report_of_a_second_release(
        workers, settings, upstream_files, tmp_path):
    if not have("ogr2ogr"):
        pytest.skip("ogr2ogr (Debian's gdal-bin) is not installed")
    root, _ = upstream_files
    v1 = make_places_files(tmp_path / "v1", deep=True)
    with serving_places(root, v1):
        first = enqueue_and_wait(settings, "gadm", "timezone")
    assert first["status"] == "succeeded"
    _ogr_load(settings.database_url, v1)

    # --- the CLI, in batch: one CSV row per known place, in input order --------------------
    points = tmp_path / "points.csv"
    points.write_text("lat,lon\n" + "".join(f"{p.lat},{p.lon}\n" for p in PLACES))
    done = run_cli("service.lookup", "--csv", str(points), settings=settings)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == len(PLACES)
    for place, row in zip(PLACES, rows):
        assert {k: row[k] for k in ("tzid", "gid_0", "name_0", "name_1")} == _expected(place), \
            place.name
        assert row["on_border"] == "false"
    one = run_cli("service.lookup", str(PLACES[0].lat), str(PLACES[0].lon), "--json",
                  settings=settings)
    assert json.loads(one.stdout)["results"]["timezone"][0]["tzid"] == PLACES[0].tzid
    refused = run_cli("service.lookup", "95", "0", settings=settings)
    assert refused.returncode == 2 and "latitude 95.0 is outside [-90, 90]" in refused.stderr

    # --- SQL, against the naive ST_Intersects on ogr2ogr's tables of the same files ---------
    with psycopg.connect(settings.database_url) as db:
        for place in PLACES:
            ours = sorted(db.execute("SELECT source, key FROM geoload.lookup(%s, %s)",
                                     (place.lon, place.lat)).fetchall())
            theirs = sorted(db.execute(
                f"SELECT 'timezone.timezones', tzid FROM {OGR}.timezones WHERE ST_Intersects("
                "geom, ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4326)) "
                + "".join(f"UNION ALL SELECT 'gadm.adm_{k}', gid_{k} FROM {OGR}.adm_{k} "
                          "WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), "
                          "4326)) " for k in LEVELS),
                {"x": place.lon, "y": place.lat}).fetchall())
            assert ours == theirs, place.name
            assert ("timezone.timezones", place.tzid) in ours

    # --- the dashboard's API ----------------------------------------------------------------
    with serving(create_app(settings), "127.0.0.1", 0) as server, requests.Session() as http:
        for place in PLACES:
            answer = http.get(f"{server.url}/api/lookup",
                              params={"lat": place.lat, "lon": place.lon}, timeout=10).json()
            assert [h["tzid"] for h in answer["results"]["timezone"]] == [place.tzid]
            gadm = answer["results"].get("gadm", [])
            assert [h["gid_0"] for h in gadm if h["level"] == 0] == (
                [place.iso3] if place.kind != "sea" else [])

    # --- a second release: Llívia handed to France, Campione d'Italia drawn, Zurich renamed ---
    with serving_places(root, release_two(tmp_path / "v2", deep=True)):
        second = enqueue_and_wait(settings, "gadm", "timezone")
    assert second["status"] == "succeeded"
    shown = run_cli("service.status", first["run_id"], "--changes", "--json", settings=settings)
    assert {d: r["first_load"] for d, r in json.loads(shown.stdout).items()} == {
        "gadm": True, "timezone": True}
    shown = run_cli("service.status", second["run_id"], "--changes", "--json",
                    settings=settings)
    assert shown.returncode == 0, shown.stderr
    reports = json.loads(shown.stdout)
    with psycopg.connect(settings.database_url) as db:
        livia, campione = km2(db, *LIVIA.box), km2(db, *CAMPIONE.box)
        gid = {(k, name): gid_of(db, f"gadm.adm_{k}", k, name) for k, name in (
            (1, "Zurich"), (1, "Cataluña"), (1, "Occitanie"), (1, "Lombardia"))}
        for k in range(2, 6):  # levels 3-5 repeat level 2's areas (places.deepen)
            gid.update({(k, name): gid_of(db, f"gadm.adm_{k}", k, name) for name in (
                "Campione d'Italia", "Zurich", "Saillagouse")})
            gid[(k, "Llívia")] = gid_of(db, f"{OGR}.adm_{k}", k, "Llívia")  # gone from live
    layers = {layer["source"]: layer for r in reports.values() for layer in r["layers"]}

    def reshaped(source: str) -> dict[str, float]:
        return {r["key"]: r["symdiff_km2"] for r in layers[source]["reshaped"]}

    assert {s: (lay["added"], lay["removed"], lay["renamed"]) for s, lay in layers.items()} == {
        "timezone.timezones": ([], [], []),
        "gadm.adm_0": ([], [], []),
        "gadm.adm_1": ([gid[(1, "Lombardia")]], [], [
            {"key": gid[(1, "Zurich")], "fields": {"name_1": ["Zürich", "Zurich"]}}]),
        **{f"gadm.adm_{k}": ([gid[(k, "Campione d'Italia")]], [gid[(k, "Llívia")]], [])
           for k in range(2, 6)},
    }
    assert reshaped("timezone.timezones") == pytest.approx({
        "Europe/Madrid": livia, "Europe/Paris": livia,
        "Europe/Rome": campione, "Europe/Zurich": campione}, rel=1e-6)
    assert reshaped("gadm.adm_0") == pytest.approx(
        {"CHE": campione, "ESP": livia, "FRA": livia, "ITA": campione}, rel=1e-6)
    assert reshaped("gadm.adm_1") == pytest.approx({
        gid[(1, "Zurich")]: campione, gid[(1, "Cataluña")]: livia,
        gid[(1, "Occitanie")]: livia}, rel=1e-6)
    for k in range(2, 6):
        assert reshaped(f"gadm.adm_{k}") == pytest.approx({
            gid[(k, "Zurich")]: campione, gid[(k, "Saillagouse")]: livia}, rel=1e-6)
    _pages_show_the_report(settings, second["run_id"], {
        "gadm": {"added": 5, "removed": 4, "renamed": 1, "reshaped": 15},
        "timezone": {"added": 0, "removed": 0, "renamed": 0, "reshaped": 4}})
    text = run_cli("service.status", second["run_id"], "--changes", settings=settings).stdout
    assert "renamed  " + gid[(1, "Zurich")] + ": name_1 'Zürich' -> 'Zurich'" in text

    # the lookup follows the new release: Llívia is French now, Campione Italian
    with psycopg.connect(settings.database_url) as db:
        livia_at = ((LIVIA.box[0] + LIVIA.box[2]) / 2, (LIVIA.box[1] + LIVIA.box[3]) / 2)
        assert db.execute("SELECT key FROM geoload.lookup(%s, %s) WHERE level = 0 AND "
                          "dataset = 'gadm'", livia_at).fetchall() == [("FRA",)]
        db.execute(f"DROP SCHEMA {OGR} CASCADE")
        db.commit()


def _pages_show_the_report(settings, run_id: str, counts: dict[str, dict[str, int]]) -> None:
    """The run and dataset pages: counts, a table row per change, the changed areas in red
    on the map (ADM_1: Lombardia added; Zurich, Cataluña, Occitanie reshaped)."""
    with serving(create_app(settings), "127.0.0.1", 0) as server, requests.Session() as http:
        for page in (f"/runs/{run_id}", "/datasets"):
            html = http.get(server.url + page, timeout=30).text
            for dataset, kinds in counts.items():
                card = html.split(f'data-dataset="{dataset}"', 1)[1].split("</section>", 1)[0]
                shown = dict(re.findall(r'data-kind="(\w+)" data-count="(\d+)"', card))
                assert {k: int(v) for k, v in shown.items()} == kinds, (page, dataset)
                report = card.split('data-test="changes"', 1)[1]
                assert report.count("<tr><td>") == sum(kinds.values()), (page, dataset)
        api = http.get(f"{server.url}/api/runs/{run_id}", timeout=30).json()
        assert {d["dataset"]: d["changes"]["counts"] for d in api["datasets"]} == counts
        svg = http.get(f"{server.url}/datasets/gadm/ADM_1/preview.svg?changes=1",
                       timeout=30).text
        assert 'data-changed="4"' in svg and svg.count('class="changed"') == 4
        plain = http.get(f"{server.url}/datasets/gadm/ADM_1/preview.svg", timeout=30).text
        assert 'data-changed="0"' in plain
        _screenshot(server.url + f"/runs/{run_id}")


def _screenshot(url: str) -> None:
    """The run page with its change report, for docs/img/changes.png (when Chromium is here)."""
    if not browser.available():
        return
    profile = tempfile.mkdtemp(prefix="geoload-chromium-")
    driver = browser.chromium(profile)
    try:
        driver.get(url)
        driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        for _ in range(100):  # the map previews are drawn on request
            if driver.execute_script("return [...document.images].every(i => i.complete)"):
                break
            time.sleep(0.1)
        browser.shoot(driver, "changes.png")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
