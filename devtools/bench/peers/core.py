"""The peers geoload is measured against: ogr2ogr, and a raw binary COPY of the final rows."""

from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import psycopg
import pyogrio
import shapely
from psycopg import sql
from pyogrio import raw

from devtools.bench.cpu import Busy
from devtools.bench.own import OwnCPU
from service import catalog
from service.fetch.unzip import ArchiveLimits, extract_member
from service.repair import is_valid
from service.settings import Settings

OGR_SCHEMA = "bench_ogr2ogr"
VALIDATION_WAY = "GEOS validity alone (CPU s)"
FLOOR_SCHEMA = "bench_copy_floor"


def ogr2ogr_command(dataset: str, settings: Settings, source: str, schema: str) -> list[str]:
    """ogr2ogr into ``schema``: every layer, MultiPolygons made valid, tables named as
    geoload names them (GDAL lower-cases GADM's layer names)."""
    layers = catalog.get(dataset).layers
    names = [] if len(layers) > 1 else ["-nln", layers[0].table_name]
    return ["ogr2ogr", "-f", "PostgreSQL", f"PG:{settings.database_url}", source,
            "-nlt", "PROMOTE_TO_MULTI", "-makevalid", "-lco", "GEOMETRY_NAME=geom",
            "-lco", f"SCHEMA={schema}", "-overwrite", *names]


def ogr2ogr_source(archive: Path, dataset: str, settings: Settings, work: Path) -> str:
    """What ogr2ogr reads: a zipped shapefile through /vsizip/, a GeoPackage extracted.

    GeoPackages are extracted once, outside the timing: SQLite over /vsizip/ is ~100x
    slower, and this gives ogr2ogr the same extracted file geoload's cache holds.
    """
    member = catalog.get(dataset).source.member
    if member.endswith(".gpkg"):
        limits = ArchiveLimits(settings.max_extract_bytes, settings.max_compression_ratio)
        return str(extract_member(archive, member, work / f"ogr-{dataset}", limits))
    with zipfile.ZipFile(archive) as zf:
        inner = next(n for n in zf.namelist() if Path(n).match(member))
    return f"/vsizip/{archive}/{inner}"


def validation_seconds(source: str) -> float:
    """CPU seconds geoload's validity check (GEOS) alone takes on ``source``, in one thread.

    Not a way of loading: the share of the work no loader that checks validity can skip,
    which the raw COPY floor does not do. Decoding the WKB is outside the timing.
    """
    spent = 0.0
    for layer in pyogrio.list_layers(source)[:, 0]:
        with raw.open_arrow(source, layer=str(layer), columns=[], batch_size=5000,
                            use_pyarrow=True) as (_, reader):
            for batch in reader:
                wkb = batch.column(batch.num_columns - 1).to_numpy(zero_copy_only=False)
                geoms = shapely.from_wkb(np.asarray(wkb))
                started = time.process_time()
                is_valid(geoms)
                spent += time.process_time() - started
    return spent


def dump_final_rows(dataset: str, settings: Settings, work: Path) -> dict[str, Path]:
    """Each published table's rows in binary COPY format, as the floor's input."""
    dumps = {}
    with psycopg.connect(settings.database_url) as conn, conn.cursor() as cur:
        for layer in catalog.get(dataset).layers:
            path = work / f"floor-{layer.schema}-{layer.table_name}.bin"
            with open(path, "wb") as out, cur.copy(sql.SQL(
                    "COPY {} TO STDOUT (FORMAT binary)").format(
                    sql.Identifier(layer.schema, layer.table_name))) as copy:
                for block in copy:
                    out.write(block)
            dumps[layer.table] = path
    return dumps


def run_copy_floor(dumps: dict[str, Path], settings: Settings
                   ) -> tuple[float, float | None, float]:
    """Seconds to COPY the final rows into empty tables like the published ones (lz4 geom),
    and the machine's busy CPU seconds meanwhile.

    One connection, one COPY per table, no repair, no index: the floor for these rows.
    """
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(FLOOR_SCHEMA)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(FLOOR_SCHEMA)))
        for table in dumps:
            schema, name = table.split(".")
            target = sql.Identifier(FLOOR_SCHEMA, name)
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(
                target, sql.Identifier(schema, name)))
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN geom SET COMPRESSION lz4").format(
                target))
        own = OwnCPU(settings.database_url, in_process=True)
        with Busy() as busy, own, conn.cursor() as cur:
            started = time.perf_counter()
            for table, path in dumps.items():
                name = table.split(".")[1]
                with cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(
                        sql.Identifier(FLOOR_SCHEMA, name))) as copy, open(path, "rb") as src:
                    while block := src.read(1 << 20):
                        copy.write(block)
            seconds = time.perf_counter() - started
        return seconds, busy.seconds, own.seconds


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="geoload-bench-"))
