"""What a lookup answers when two time zone variants are live (``timezone`` and
``timezone-land``), and when one of them is live without a lookup table.

Both variants are loaded through the pipeline's steps (the test driver) from generated
files at upstream's URLs. The expected zone at each point is the one plain
``ST_Intersects`` finds on each variant's data table, not the lookup's answer.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import psycopg
import pytest

from devtools.testdata.mirror import mirror_path
from devtools.testdata.timezone import make_timezone_zip
from service.catalog.timezone import RELEASES_URL
from service.dashboard.app import create_app
from service.dashboard.server import serving
from service.pipeline.messages import FETCH, PLAN, Next
from service.settings import Settings
from tests.conftest import reset_database, run_cli
from tests.service.dashboard.support import Client
from tests.support.driver import drain, new_run

TABLES = {"timezone": "timezone.timezones", "timezone-land": "timezone.timezones_land"}


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float
    #: variant -> the zones plain SQL finds the point in on its data table
    zones: dict[str, list[str]]


def _load(settings: Settings, dataset: str) -> None:
    run_id = new_run(settings, dataset)
    drain(settings, [Next(FETCH, (run_id, dataset)), Next(PLAN, (run_id, dataset))])


def _zones(db: psycopg.Connection, table: str, lat: float, lon: float) -> list[str]:
    return [t for (t,) in db.execute(
        f"SELECT tzid FROM {table} WHERE ST_Intersects(geom, "  # noqa: S608 - constants
        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY tzid", (lon, lat))]


def _points(settings: Settings) -> list[Point]:
    """A point inside one zone of each variant, and a point where both have a zone; the
    variants were drawn with other seeds, so their zones differ there."""
    with psycopg.connect(settings.database_url) as db:
        inside = db.execute(
            "SELECT ST_Y(p), ST_X(p) FROM (SELECT ST_PointOnSurface(geom) p FROM "
            "timezone.timezones ORDER BY ST_Area(geom) DESC LIMIT 1) a UNION ALL "
            "SELECT ST_Y(p), ST_X(p) FROM (SELECT ST_PointOnSurface(geom) p FROM "
            "timezone.timezones_land ORDER BY ST_Area(geom) DESC LIMIT 1) b").fetchall()
        return [Point(lat, lon, {v: _zones(db, t, lat, lon) for v, t in TABLES.items()})
                for lat, lon in inside]


@pytest.fixture(scope="module")
def two_variants(settings: Settings, upstream_files) -> Iterator[list[Point]]:
    """``timezone`` and ``timezone-land`` published, each with its lookup table."""
    root, manifest = upstream_files
    land = root / mirror_path(RELEASES_URL.format(release=manifest.timezone_release,
                                                  asset="timezones"))
    made = make_timezone_zip(land, zones=14, vertices=20_000, seed=21,
                             stem="combined-shapefile")
    try:
        reset_database(settings.database_url)
        _load(settings, "timezone")
        _load(settings, "timezone-land")
        points = _points(settings)
        # the test means something only if the variants answer differently at the points
        assert all(p.zones["timezone"] and p.zones["timezone-land"] for p in points)
        assert any(p.zones["timezone"] != p.zones["timezone-land"] for p in points)
        assert set(made.tzids) != set(manifest.timezone.tzids)
        yield points
    finally:
        land.unlink(missing_ok=True)


def test_the_csv_has_a_column_per_variant_named_after_its_table(two_variants, settings,
                                                                tmp_path) -> None:
    source = tmp_path / "points.csv"
    source.write_text("lat,lon\n" + "".join(f"{p.lat},{p.lon}\n" for p in two_variants),
                      encoding="utf-8")
    done = run_cli("service.lookup", "--csv", str(source), settings=settings)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["lat", "lon", "timezone.timezones.tzid",
                       "timezone.timezones_land.tzid", "on_border"]
    assert len(rows[0]) == len(set(rows[0]))
    assert [(float(r[0]), float(r[1])) for r in rows[1:]] == [(p.lat, p.lon)
                                                               for p in two_variants]
    assert [r[2] for r in rows[1:]] == ["|".join(p.zones["timezone"]) for p in two_variants]
    assert [r[3] for r in rows[1:]] == ["|".join(p.zones["timezone-land"])
                                        for p in two_variants]
    assert done.stderr == ""  # both variants have their lookup table: nothing to warn of


def test_json_and_text_tell_the_variants_apart(two_variants, settings) -> None:
    for point in two_variants:
        out = run_cli("service.lookup", str(point.lat), str(point.lon), "--json",
                      settings=settings)
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        for variant, table in TABLES.items():
            assert [(h["source"], h["tzid"]) for h in answer["results"][variant]] == [
                (table, zone) for zone in point.zones[variant]]
        assert answer["without_lookup_table"] == []
        text = run_cli("service.lookup", str(point.lat), str(point.lon), settings=settings)
        lines = text.stdout.splitlines()
        for variant, table in TABLES.items():
            found = [line.split() for line in lines if table + " " in line]
            assert [(words[0], words[-1]) for words in found] == [
                (variant, zone) for zone in point.zones[variant]]
        assert "note:" not in text.stdout


def test_geoload_lookup_answers_as_python_m_service_lookup(two_variants, settings,
                                                          tmp_path) -> None:
    """The ``geoload lookup`` console path (``python -m service.cli`` is the console
    script's :func:`service.cli.main.entry`), not only ``python -m service.lookup``."""
    point = two_variants[0]
    out = run_cli("service.cli", "lookup", str(point.lat), str(point.lon), "--json",
                  settings=settings)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert {v: [h["tzid"] for h in answer["results"][v]] for v in TABLES} == point.zones
    source = tmp_path / "points.csv"
    source.write_text(f"lat,lon\n{point.lat},{point.lon}\n", encoding="utf-8")
    batch = run_cli("service.cli", "lookup", "--csv", str(source), settings=settings)
    assert batch.returncode == 0, batch.stderr
    assert batch.stdout.splitlines()[1].split(",")[2:] == [
        "|".join(point.zones["timezone"]), "|".join(point.zones["timezone-land"]), "false"]
    bad = run_cli("service.cli", "lookup", "91", "0", settings=settings)
    assert bad.returncode == 2 and "latitude 91.0 is outside [-90, 90]" in bad.stderr
    neither = run_cli("service.cli", "lookup", settings=settings)
    assert neither.returncode == 2 and "give LAT LON, or --csv FILE" in neither.stderr
    shown = run_cli("service.cli", "lookup", "--help", settings=settings)
    assert shown.stdout.startswith("usage: geoload lookup")
    assert "examples:\n  geoload lookup 47.6964 8.6903" in shown.stdout


def test_a_variant_live_without_a_lookup_table_is_named_with_what_to_do(
        two_variants, settings, serve_dashboard, tmp_path) -> None:
    """Runs last in this module: it loads ``timezone-land`` again with GEOLOAD_LOOKUP=0."""
    _load(replace(settings, lookup_tables=False), "timezone-land")
    point = two_variants[1]  # inside a land zone: empty for land, which reads like sea
    text = run_cli("service.lookup", str(point.lat), str(point.lon), settings=settings)
    assert text.returncode == 0, text.stderr
    assert "timezone.timezones_land" not in text.stdout
    notes = [line for line in text.stdout.splitlines() if "note:" in line]
    assert notes == ["  note: timezone-land is published without a lookup table, so no "
                     "answer includes its areas: load it again without GEOLOAD_LOOKUP=0 "
                     "(geoload load timezone-land)"]
    shown = run_cli("service.lookup", str(point.lat), str(point.lon), "--json",
                    settings=settings)
    answer = json.loads(shown.stdout)
    assert [u["dataset"] for u in answer["without_lookup_table"]] == ["timezone-land"]
    assert answer["without_lookup_table"][0]["schema"] is None
    assert "timezone-land" not in answer["results"]
    api = Client(serve_dashboard(settings)).get(f"/api/lookup?lat={point.lat}&lon={point.lon}")
    assert api.status_code == 200, api.text
    assert api.json()["without_lookup_table"] == answer["without_lookup_table"]
    source = tmp_path / "points.csv"
    source.write_text(f"lat,lon\n{point.lat},{point.lon}\n", encoding="utf-8")
    batch = run_cli("service.lookup", "--csv", str(source), settings=settings)
    assert batch.returncode == 0, batch.stderr
    assert batch.stdout.splitlines()[0] == "lat,lon,tzid,on_border"
    assert "timezone-land is published without a lookup table" in batch.stderr


@pytest.fixture()
def serve_dashboard() -> Iterator:
    """Start the dashboard in this process; it stops after the test. Returns its URL."""
    managers = []

    def start(settings: Settings) -> str:
        manager = serving(create_app(settings), "127.0.0.1", 0)
        managers.append(manager)
        return manager.__enter__().url

    yield start
    for manager in managers:
        manager.__exit__(None, None, None)
