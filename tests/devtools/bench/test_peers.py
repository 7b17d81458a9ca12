"""The peers' contract: each ends with geoload's result or its row says what differs, and a
missing tool skips a peer with a note rather than failing the benchmark."""

import psycopg
import pytest
import shapely
from psycopg import sql

from devtools.bench.__main__ import run_peer
from devtools.bench.peers import Job, Peer, PeerFailed, verify
from devtools.bench.peers.with_geopandas import as_multipolygons
from devtools.bench.report import Row

SCHEMA = "bench_test_verify"


@pytest.fixture()
def scratch_schema(settings):
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        yield conn
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def _table(conn, geometry_type: str, rows: list[str], gist: bool = True) -> None:
    conn.execute(f"CREATE TABLE {SCHEMA}.t (name text, geom geometry({geometry_type},4326))")
    for wkt in rows:
        conn.execute(f"INSERT INTO {SCHEMA}.t VALUES ('x', ST_GeomFromText(%s, 4326))", (wkt,))
    if gist:
        conn.execute(f"CREATE INDEX ON {SCHEMA}.t USING gist (geom)")


SQUARE = "MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)))"
BOWTIE = "MULTIPOLYGON(((0 0,1 1,1 0,0 1,0 0)))"


def test_a_peer_with_geoloads_result_passes(scratch_schema, settings):
    _table(scratch_schema, "MultiPolygon", [SQUARE, SQUARE])
    verify(settings, SCHEMA, {"t": 2})


@pytest.mark.parametrize(("geometry_type", "rows", "gist", "expected", "problem"), [
    ("MultiPolygon", [SQUARE], True, 2, "1 rows, geoload published 2"),
    ("Geometry", [SQUARE], True, 1, "geometry(GEOMETRY,4326), not geometry(MultiPolygon,4326)"),
    ("MultiPolygon", [SQUARE, BOWTIE], True, 2, "1 invalid geometries"),
    ("MultiPolygon", [SQUARE], False, 1, "no GiST index"),
])
def test_a_peer_that_differs_is_told_what_differs(scratch_schema, settings, geometry_type, rows,
                                                  gist, expected, problem):
    _table(scratch_schema, geometry_type, rows, gist)
    with pytest.raises(PeerFailed) as err:
        verify(settings, SCHEMA, {"t": expected})
    assert str(err.value) == f"{SCHEMA}.t: {problem}"


def test_a_missing_table_fails_verification(scratch_schema, settings):
    with pytest.raises(PeerFailed, match=rf"{SCHEMA}\.nothing: 0 geometry columns"):
        verify(settings, SCHEMA, {"nothing": 1})


def _job(settings, tmp_path) -> Job:
    return Job("timezone", tmp_path / "x.zip", "http://127.0.0.1:1/x.zip", "x", settings,
               tmp_path)


def test_a_missing_peer_is_skipped_with_a_note(settings, tmp_path):
    ran = []
    peer = Peer("nothing", "bench_nothing", lambda job, schema: ran.append(schema),
                commands=("geoload-no-such-tool",))
    row = Row("timezone", peer.way, note=peer.missing())
    run_peer(peer, row, _job(settings, tmp_path), {"timezones": 1})
    assert ran == [] and row.runs == []
    assert row.note == ("skipped: geoload-no-such-tool not found "
                        "(apt-get install postgis gdal-bin)")
    module = Peer("nothing", "bench_nothing", print, modules=("geoload_no_such_module",))
    assert module.missing() == ("skipped: Python package geoload_no_such_module missing "
                                "(pip install '.[bench]')")


def test_a_failing_peer_says_so_in_its_row(settings, tmp_path):
    def load(job, schema):
        raise RuntimeError("the tool crashed\nwith more lines")

    peer = Peer("crashes", "bench_crashes", load)
    row = Row("timezone", peer.way)
    run_peer(peer, row, _job(settings, tmp_path), {"timezones": 1})
    assert row.runs == [] and row.note == "failed: RuntimeError: the tool crashed"


def test_a_peer_that_loads_nothing_fails_verification_in_its_row(settings, tmp_path):
    peer = Peer("empty", "bench_empty", lambda job, schema: None)
    row = Row("timezone", peer.way)
    run_peer(peer, row, _job(settings, tmp_path), {"timezones": 3})
    assert row.runs == []
    assert row.note == ("failed: PeerFailed: bench_empty.timezones: 0 geometry columns "
                        "(table missing?), not 1")


def test_make_valid_output_becomes_one_multipolygon_per_feature():
    polygon = shapely.box(0, 0, 1, 1)
    two = shapely.MultiPolygon([polygon, shapely.box(2, 2, 3, 3)])
    collection = shapely.GeometryCollection([two, shapely.LineString([(0, 0), (5, 5)])])
    out = as_multipolygons(shapely.from_wkt([polygon.wkt, collection.wkt, "POINT (1 1)"]))
    assert [g.geom_type if g is not None else None for g in out] == [
        "MultiPolygon", "MultiPolygon", None]
    assert len(out[0].geoms) == 1 and len(out[1].geoms) == 2
    assert out[1].area == 2.0
