"""Issue 11: upstream drift and a few bad features load, with warnings a user sees everywhere.

Each case goes the real way: a crafted file on the loopback mirror, ``python -m
service.enqueue … --wait`` and worker processes. A default load goes through and
records its warnings in ``geoload.loads``; ``enqueue --wait``, ``status`` (text and
JSON) and the dashboard's run and dataset pages show them. The strict mode's refusals
are cases of test_bad_inputs.py.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
import requests
import shapely

from service.dashboard.app import create_app
from service.dashboard.server import serving
from service.data_warnings import DROPPED_FEATURES, MISSING_FIELD, TYPE_CHANGED, UNKNOWN_FIELD
from tests.faults.harness import Run, Stack
from tests.support import craft

pytestmark = pytest.mark.faults

COLLAPSED = shapely.MultiPolygon([shapely.Polygon([(0, 0), (1, 1), (2, 2), (0, 0)])])
PROJECTED = shapely.MultiPolygon([shapely.box(500_000, 4_000_000, 501_000, 4_001_000)])
MALFORMED = b"\x01\x06\x00\x00\x00garbage"
HOSTILE = "<img src=x onerror=alert(1)>"


def _columns(stack: Stack, table: str) -> list[tuple[str, str]]:
    return [(r["column_name"], r["data_type"]) for r in stack.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        "'gadm' AND table_name = %s ORDER BY ordinal_position", table)]


def _source(stack: Stack, layer: str) -> pa.Table:
    return craft.read_layers(stack.mirror.good.gadm_gpkg, [layer])[layer]


def _kinds(load: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return sorted((w["kind"], w["layer"], w["field"]) for w in load["warnings"])


def _loaded(run: Run) -> dict[str, Any]:
    assert run.code == 0, run.output[-3000:]
    load = run.load("gadm")
    assert load["status"] == "published" and load["error"] is None
    return load


def test_schema_drift_loads_with_warnings_and_keeps_the_tables_shape(stack, previous, tmp_path):
    """A non-key field missing, one added, one retyped: loaded, each with its warning."""
    before = {t: _columns(stack, t) for t in ("adm_1", "adm_2", "adm_4")}
    adm_2 = _source(stack, "ADM_2").num_rows
    stack.mirror.put("gadm", craft.craft_gadm(stack.mirror.good.gadm_gpkg, tmp_path / "d.zip", {
        "ADM_4": craft.drop_field("VARNAME_4"),
        "ADM_1": craft.set_field("SOURCE_1", lambda n: pa.array([f"s{i}" for i in range(n)])),
        "ADM_2": craft.set_field("TYPE_2", lambda n: pa.array(range(n), pa.int64())),
    }))
    run = stack.enqueue("gadm")
    load = _loaded(run)
    assert _kinds(load) == [(MISSING_FIELD, "ADM_4", "VARNAME_4"),
                            (TYPE_CHANGED, "ADM_2", "TYPE_2"),
                            (UNKNOWN_FIELD, "ADM_1", "SOURCE_1")]
    # the shape users query stays: the dropped field's column is there, NULL
    assert _columns(stack, "adm_4") == before["adm_4"]
    assert stack.query("SELECT count(varname_4) AS n FROM gadm.adm_4")[0]["n"] == 0
    assert stack.query("SELECT count(*) AS n FROM gadm.adm_4")[0]["n"] == (
        load["layers"]["ADM_4"]["source"])
    # the retyped field arrives as text, the added one lower-cased after the catalog's
    assert _columns(stack, "adm_2") == before["adm_2"]
    types = stack.query("SELECT type_2 FROM gadm.adm_2 ORDER BY fid")
    assert [r["type_2"] for r in types] == [str(i) for i in range(adm_2)]
    assert _columns(stack, "adm_1") == [*before["adm_1"][:-1], ("source_1", "text"),
                                        before["adm_1"][-1]]
    assert stack.query("SELECT source_1 FROM gadm.adm_1 WHERE fid = 3")[0]["source_1"] == "s2"
    # every face shows them: enqueue --wait, status, status --json
    assert ("geoload: gadm warning: ADM_4: field VARNAME_4 is missing from the source; column "
            "varname_4 is created and left NULL") in run.stderr
    assert "geoload: gadm warning: ADM_2: field TYPE_2 is bigint, the catalog expects text; " \
           "loaded as text" in run.stderr
    text = stack.cli("service.status", run.run_id)
    assert "warning ADM_1: field SOURCE_1 (text) is not in the catalog; loaded as column " \
           "source_1" in text.stdout
    shown = json.loads(stack.cli("service.status", run.run_id, "--json").stdout)
    assert sorted((w["kind"], w["layer"], w["field"]) for w in shown["datasets"][0]["warnings"]
                  ) == _kinds(load)


def test_unloadable_features_keep_their_rows_with_geom_null_and_a_warning(stack, previous,
                                                                         tmp_path):
    """No polygonal part after make_valid, outside lon/lat, malformed WKB: one each."""
    adm_3, adm_4 = _source(stack, "ADM_3"), _source(stack, "ADM_4")
    stack.mirror.put("gadm", craft.craft_gadm(
        stack.mirror.good.gadm_gpkg, tmp_path / "b.zip",
        {"ADM_3": craft.set_geometry(4, COLLAPSED), "ADM_4": craft.set_geometry(9, PROJECTED)},
        raw_geometries={("ADM_4", 12): MALFORMED}))
    run = stack.enqueue("gadm")
    load = _loaded(run)
    gid_3, gid_4 = adm_3.column("GID_3").to_pylist(), adm_4.column("GID_4").to_pylist()
    nulls = stack.query("SELECT 3 AS level, fid, gid_3 AS gid FROM gadm.adm_3 WHERE geom IS NULL "
                        "UNION ALL SELECT 4, fid, gid_4 FROM gadm.adm_4 WHERE geom IS NULL "
                        "ORDER BY 1, 2")
    assert [tuple(r.values()) for r in nulls] == [(3, 5, gid_3[4]), (4, 10, gid_4[9]),
                                                  (4, 12, gid_4[11])]
    for layer, table, dropped in (("ADM_3", adm_3, 1), ("ADM_4", adm_4, 2)):
        counts = load["layers"][layer]
        assert (counts["source"], counts["loaded"], counts["dropped"]) == (
            table.num_rows, table.num_rows, dropped)
    warned = {w["layer"]: w for w in load["warnings"]}
    assert _kinds(load) == [(DROPPED_FEATURES, "ADM_3", "GID_3"),
                            (DROPPED_FEATURES, "ADM_4", "GID_4")]
    assert warned["ADM_4"]["count"] == 2 and warned["ADM_4"]["features"] == [
        {"fid": 10, "key": gid_4[9], "problem": "coordinates outside EPSG:4326 bounds"},
        {"fid": 12, "key": gid_4[11], "problem": "malformed WKB"}]
    assert (f"geoload: gadm warning: ADM_3: 1 feature(s) kept with geom NULL, their geometry "
            f"could not be loaded faithfully: fid 5 (GID_3 '{gid_3[4]}'): no polygonal part "
            "even after make_valid") in run.stderr
    chunks = stack.chunks(run.run_id)
    assert sum(c["dropped"] for c in chunks) == 3


def test_dashboard_run_and_dataset_pages_show_the_warnings_escaped(stack, previous, tmp_path):
    stack.mirror.put("gadm", craft.craft_gadm(
        stack.mirror.good.gadm_gpkg, tmp_path / "h.zip",
        {"ADM_1": craft.set_field(HOSTILE, lambda n: pa.array(["x"] * n)),
         "ADM_2": craft.set_geometry(0, COLLAPSED)}))
    run = stack.enqueue("gadm")
    _loaded(run)
    with serving(create_app(stack.settings), "127.0.0.1", 0) as server:
        pages = {path: requests.get(server.url + path, timeout=30)
                 for path in (f"/runs/{run.run_id}", "/datasets", f"/api/runs/{run.run_id}",
                              "/api/datasets")}
    assert all(r.status_code == 200 for r in pages.values())
    (dataset,) = pages[f"/api/runs/{run.run_id}"].json()["datasets"]
    published = {d["dataset"]: d for d in pages["/api/datasets"].json()["datasets"]}["gadm"]
    for shown in (dataset["warnings"], published["warnings"]):
        assert sorted((w["kind"], w["layer"]) for w in shown) == [
            (DROPPED_FEATURES, "ADM_2"), (UNKNOWN_FIELD, "ADM_1")]
    assert dataset["layers"][2]["dropped"] == 1 == published["layers"][2]["dropped"]
    for path in (f"/runs/{run.run_id}", "/datasets"):
        page = pages[path].text
        assert '<div class="warnings"><strong>2 warning(s):</strong>' in page, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page and HOSTILE not in page, path
        assert "fid 1 (GID_2" in page, path


# --- timezone: one field, tzid, and the same rules -----------------------------------------

TIMEZONE_LAYER = "combined-shapefile-with-oceans"


def _timezone_source(stack: Stack) -> pa.Table:
    path = f"/vsizip/{stack.mirror.good.timezone_zip}/{TIMEZONE_LAYER}.shp"
    return craft.read_layers(path)[TIMEZONE_LAYER]


def _timezone_columns(stack: Stack) -> list[tuple[str, str]]:
    return [(r["column_name"], r["data_type"]) for r in stack.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        "'timezone' AND table_name = 'timezones' ORDER BY ordinal_position")]


def test_a_timezone_field_the_catalog_does_not_know_is_loaded_lower_cased(stack, previous,
                                                                          tmp_path):
    """Issue 11: "A field the catalog does not know is loaded (lower-cased), with a warning",
    for the time zones as for GADM."""
    tzids = _timezone_source(stack).column("tzid").to_pylist()
    stack.mirror.put("timezone", craft.craft_timezone(
        stack.mirror.good.timezone_zip, tmp_path / "tz.zip",
        craft.set_field("Comment", lambda n: pa.array([f"note {i}" for i in range(n)]))))
    run = stack.enqueue("timezone")
    assert run.code == 0, run.output[-3000:]
    load = run.load("timezone")
    assert _kinds(load) == [(UNKNOWN_FIELD, TIMEZONE_LAYER, "Comment")]
    assert _timezone_columns(stack) == [("tzid", "text"), ("comment", "text"),
                                        ("geom", "USER-DEFINED")]
    rows = stack.query("SELECT tzid, comment FROM timezone.timezones")
    assert sorted((r["tzid"], r["comment"]) for r in rows) == sorted(
        (tzid, f"note {i}") for i, tzid in enumerate(tzids))
    assert (f"geoload: timezone warning: {TIMEZONE_LAYER}: field Comment (text) is not in the "
            "catalog; loaded as column comment") in run.stderr


def test_unloadable_time_zones_keep_their_rows_with_geom_null_and_their_tzid(stack, previous,
                                                                           tmp_path):
    """No polygonal part after make_valid, and outside lon/lat: the rows stay, named by tzid."""
    tzids = _timezone_source(stack).column("tzid").to_pylist()
    stack.mirror.put("timezone", craft.craft_timezone(
        stack.mirror.good.timezone_zip, tmp_path / "tz.zip",
        craft.chain(craft.set_geometry(1, COLLAPSED.geoms[0]),
                    craft.set_geometry(3, PROJECTED.geoms[0]))))
    run = stack.enqueue("timezone")
    assert run.code == 0, run.output[-3000:]
    load = run.load("timezone")
    nulls = stack.query("SELECT tzid FROM timezone.timezones WHERE geom IS NULL ORDER BY tzid")
    assert [r["tzid"] for r in nulls] == sorted([tzids[1], tzids[3]])
    counts = load["layers"][TIMEZONE_LAYER]
    assert (counts["source"], counts["loaded"], counts["dropped"]) == (len(tzids), len(tzids), 2)
    (warning,) = load["warnings"]
    assert (warning["kind"], warning["field"], warning["count"]) == (DROPPED_FEATURES, "tzid", 2)
    assert [(f["fid"], f["key"], f["problem"]) for f in warning["features"]] == [
        (1, tzids[1], "no polygonal part even after make_valid"),
        (3, tzids[3], "coordinates outside EPSG:4326 bounds")]
    assert f"fid 1 (tzid '{tzids[1]}'): no polygonal part even after make_valid" in run.stderr
    assert sum(c["dropped"] for c in stack.chunks(run.run_id)) == 2
