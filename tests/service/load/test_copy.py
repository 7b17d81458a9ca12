"""The binary COPY path against a real PostGIS: every source type arrives as it was sent."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import shapely
from psycopg import sql

from service.ledger import schema
from service.load import copy as copy_module
from service.load import staging
from service.load.columns import Column
from service.load.copy import Copier

COLUMNS = [
    Column("gid", "__fid", "bigint"), Column("name", "name", "text"),
    Column("level", "level", "integer"), Column("rank", "rank", "smallint"),
    Column("area", "area", "double precision"), Column("share", "share", "real"),
    Column("coastal", "coastal", "boolean"), Column("valid_from", "valid_from", "date"),
    Column("changed", "changed", "timestamptz"),
]


def _batch(rows: int) -> pa.RecordBatch:
    names = ["Zürich", "東京都", "Łódź", None, "a \"quoted\" name; DROP TABLE x", "",
             "Ærøskøbing", "ﻣﺼﺮ"]
    return pa.RecordBatch.from_arrays([
        pa.array(np.arange(rows, dtype=np.int64) + 10),
        pa.array([names[i % len(names)] for i in range(rows)]),
        pa.array([i % 6 for i in range(rows)], type=pa.int32()),
        pa.array([None if i % 5 == 0 else i for i in range(rows)], type=pa.int16()),
        pa.array([i * 1.5 for i in range(rows)], type=pa.float64()),
        pa.array([i / 4 for i in range(rows)], type=pa.float32()),
        pa.array([i % 2 == 0 for i in range(rows)]),
        pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(rows)]),
        # A source time without a zone (as GDAL reads many files) is taken as UTC.
        pa.array([dt.datetime(2024, 5, 1, 12, 30) + dt.timedelta(hours=i) for i in range(rows)],
                 type=pa.timestamp("ms")),
    ], names=["__fid", "name", "level", "rank", "area", "share", "coastal", "valid_from",
              "changed"])


def _wkb(rows: int) -> np.ndarray:
    squares = [shapely.MultiPolygon([shapely.box(i % 170, 0, i % 170 + 1, 1)])
               for i in range(rows)]
    out = np.array([shapely.to_wkb(g) for g in squares], dtype=object)
    out[3] = None
    return out


@pytest.fixture()
def staging_table(db, clean_db):
    schema.ensure(db)
    staging.create(db, "copy_test", COLUMNS)
    yield staging.staged("copy_test")
    db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging.staged("copy_test")))


def test_every_column_type_arrives_as_sent_in_several_pieces(db, staging_table, monkeypatch):
    monkeypatch.setattr(copy_module, "PIECE_BYTES", 500)  # ~5 squares per piece
    batch, wkb = _batch(40), _wkb(40)
    with db.transaction(), db.cursor() as cur, Copier(cur, "copy_test", COLUMNS) as copier:
        copier.write(batch.slice(0, 25), wkb[:25])
        copier.write(batch.slice(25), wkb[25:])
    assert copier.rows == 40
    got = db.execute(sql.SQL("SELECT gid, name, level, rank, area, share, coastal, valid_from, "
                             "changed, ST_AsBinary(geom), ST_SRID(geom) FROM {} ORDER BY gid")
                     .format(staging_table)).fetchall()
    assert len(got) == 40
    expected = batch.to_pylist()
    for row, want, geometry in zip(got, expected, wkb):
        assert row[:8] == (want["__fid"], want["name"], want["level"], want["rank"],
                           want["area"], pytest.approx(want["share"]), want["coastal"],
                           want["valid_from"])
        assert row[8] == want["changed"].replace(tzinfo=dt.UTC)
        if geometry is None:
            assert row[9] is None
        else:
            assert shapely.from_wkb(row[9]).equals(shapely.from_wkb(geometry))
            assert row[10] == 4326


def test_a_geometry_bigger_than_a_piece_is_sent_from_its_own_bytes(db, staging_table,
                                                                     monkeypatch):
    monkeypatch.setattr(copy_module, "PIECE_BYTES", 500)
    wkb = _wkb(30)
    for row in (0, 7, 8, 29):  # first, beside another, last: each longer than a piece
        circle = shapely.Point(row, 0).buffer(0.4, quad_segs=64)
        wkb[row] = shapely.to_wkb(shapely.MultiPolygon([circle]))
    assert all(len(wkb[r]) > 500 for r in (0, 7, 8, 29))
    batch = _batch(30)
    with db.transaction(), db.cursor() as cur, Copier(cur, "copy_test", COLUMNS) as copier:
        copier.write(batch, wkb)
    got = db.execute(sql.SQL("SELECT gid, name, rank, ST_AsBinary(geom) FROM {} ORDER BY gid")
                     .format(staging_table)).fetchall()
    assert [(g, n, r) for g, n, r, _ in got] == [(w["__fid"], w["name"], w["rank"])
                                                 for w in batch.to_pylist()]
    assert [None if g is None else bytes(g) for *_, g in got] == list(wkb)


def test_a_failed_copy_leaves_nothing(db, staging_table):
    wkb = _wkb(10)
    wkb[5] = b"\x01\x06\x00\x00\x00garbage"
    with (pytest.raises(Exception, match="column geom"), db.transaction(), db.cursor() as cur,
          Copier(cur, "copy_test", COLUMNS) as copier):
        copier.write(_batch(10), wkb)
    count = db.execute(sql.SQL("SELECT count(*) FROM {}").format(staging_table)).fetchone()
    assert count == (0,)


def test_a_column_without_a_source_is_null_and_a_retyped_one_arrives_as_text(db, clean_db):
    """Schema drift: the catalog's column whose field upstream dropped, and fields whose
    type changed, loaded as text (see service/columns.py)."""
    drift = [Column("gid", "__fid", "bigint"), Column("name", "name", "text"),
             Column("varname", None, "text"), Column("area", None, "double precision"),
             Column("level", "level", "text"), Column("valid_from", "valid_from", "text")]
    schema.ensure(db)
    staging.create(db, "drift_test", drift)
    batch = _batch(12).select(["__fid", "name", "level", "valid_from"])
    with db.transaction(), db.cursor() as cur, Copier(cur, "drift_test", drift) as copier:
        copier.write(batch, _wkb(12))
    got = db.execute(sql.SQL("SELECT gid, name, varname, area, level, valid_from FROM {} "
                             "ORDER BY gid").format(staging.staged("drift_test"))).fetchall()
    assert got == [(row["__fid"], row["name"], None, None, str(row["level"]),
                    row["valid_from"].isoformat()) for row in batch.to_pylist()]
