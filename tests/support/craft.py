"""Bad upstream files, crafted from the good tiny ones: one thing wrong in each.

A crafted file is the tiny generated GADM GeoPackage (or timezone shapefile) read
back as Arrow tables, changed by small *edits* and written again, so every bad
input differs from a loadable file in exactly the way its test names. Zip-level
faults (zip-slip, bombs, corruption) are built byte by byte.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
from pyogrio import raw

from devtools.testdata.gadm import GPKG_NAME
from devtools.testdata.mirror import Manifest, generate
from devtools.testdata.timezone import STEM as TIMEZONE_STEM

#: An edit turns a layer's Arrow table (fields, then WKB ``geom``) into the bad one.
Edit = Callable[[pa.Table], pa.Table]
GEOMETRY = "geom"
#: Zip structures patched to lie about sizes (APPNOTE 4.3.7 and 4.3.12).
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")


# --- the good files ---------------------------------------------------------------------

@dataclass(frozen=True)
class GoodFiles:
    """The tiny generated files every crafted file starts from."""

    gadm_zip: Path
    gadm_gpkg: Path
    timezone_zip: Path


def good_files(folder: Path, release: str) -> GoodFiles:
    """Generate the tiny files once and extract the GeoPackage the crafts start from."""
    manifest: Manifest = generate(folder / "upstream", size="tiny", timezone_release=release)
    with zipfile.ZipFile(manifest.gadm.path) as zf:
        gpkg = Path(zf.extract(manifest.gadm.member, folder / "gpkg"))
    return GoodFiles(manifest.gadm.path, gpkg, manifest.timezone.path)


def read_layers(path: Path | str, layers: list[str] | None = None) -> dict[str, pa.Table]:
    """Every layer (or the named ones) as a plain Arrow table, geometry as WKB ``geom``."""
    names = layers or [str(row[0]) for row in pyogrio.list_layers(path)]
    return {name: _plain(raw.read_arrow(path, layer=name)[1]) for name in names}


def _plain(table: pa.Table) -> pa.Table:
    """Drop GeoArrow metadata and name the geometry column ``geom`` whatever the driver said."""
    geometry = next(f.name for f in table.schema
                    if (f.metadata or {}).get(b"ARROW:extension:name") == b"geoarrow.wkb")
    wkb = table.column(geometry).cast(pa.binary())
    return table.drop_columns([geometry]).append_column(GEOMETRY, wkb)


# --- edits ---------------------------------------------------------------------------

def chain(*edits: Edit) -> Edit:
    """Apply ``edits`` in order."""
    def edit(table: pa.Table) -> pa.Table:
        for one in edits:
            table = one(table)
        return table
    return edit


def drop_field(name: str) -> Edit:
    return lambda table: table.drop_columns([name])


def set_field(name: str, values: Callable[[int], pa.Array]) -> Edit:
    """Replace (or add) field ``name``; ``values(n)`` builds its n values."""
    def edit(table: pa.Table) -> pa.Table:
        column = values(table.num_rows)
        if name in table.column_names:
            return table.set_column(table.column_names.index(name), name, column)
        return table.add_column(table.num_columns - 1, name, column)
    return edit


def set_value(name: str, row: int, value: object) -> Edit:
    """One cell changed, the rest of the column kept."""
    def edit(table: pa.Table) -> pa.Table:
        values = table.column(name).to_pylist()
        values[row] = value
        return set_field(name, lambda _n: pa.array(values, table.schema.field(name).type))(table)
    return edit


def set_geometry(row: int, geometry: shapely.Geometry) -> Edit:
    return set_value(GEOMETRY, row, shapely.to_wkb(geometry))


def map_geometries(change: Callable[[np.ndarray], np.ndarray]) -> Edit:
    """Every geometry replaced by ``change(geometries)``."""
    def edit(table: pa.Table) -> pa.Table:
        geoms = shapely.from_wkb(table.column(GEOMETRY).to_numpy(zero_copy_only=False))
        wkb = pa.array(shapely.to_wkb(change(geoms)), pa.binary())
        return table.set_column(table.num_columns - 1, GEOMETRY, wkb)
    return edit


def empty(table: pa.Table) -> pa.Table:
    return table.slice(0, 0)


def text(length: int, seed: int = 0) -> str:
    """Incompressible letters, so that PostgreSQL can't squeeze the value below a limit."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    return np.random.default_rng(seed).choice(letters, length).tobytes().decode()


# --- writing GADM-like GeoPackages ----------------------------------------------------

def write_gpkg(gpkg: Path, layers: Mapping[str, pa.Table], *,
               geometry_type: str | Mapping[str, str] = "MultiPolygon", crs: str = "EPSG:4326",
               fid: str = "fid", geometry_name: str = GEOMETRY) -> Path:
    """Write ``layers`` in order; ``geometry_type`` may differ per layer."""
    for name, table in layers.items():
        kind = geometry_type if isinstance(geometry_type, str) else geometry_type.get(
            name, "MultiPolygon")
        raw.write_arrow(table, str(gpkg), layer=name, driver="GPKG", geometry_name=GEOMETRY,
                        geometry_type=kind, crs=crs, append=gpkg.exists(),
                        layer_options={"FID": fid, "GEOMETRY_NAME": geometry_name})
    return gpkg


def craft_gadm(good_gpkg: Path, out_zip: Path, edits: Mapping[str, Edit] | None = None, *,
               rename: Mapping[str, str] | None = None,
               raw_geometries: Mapping[tuple[str, int], bytes] | None = None,
               **write_options: object) -> Path:
    """The good GeoPackage with ``edits`` per layer and layers renamed, written and zipped.

    ``raw_geometries``: ``(layer, fid) → WKB`` stored as they are, after writing, where
    GDAL would refuse to write them (malformed WKB).
    """
    layers = read_layers(good_gpkg)
    for name, edit in (edits or {}).items():
        layers[name] = edit(layers[name])
    layers = {(rename or {}).get(name, name): table for name, table in layers.items()}
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = write_gpkg(Path(tmp) / GPKG_NAME, layers, **write_options)  # type: ignore[arg-type]
        for (layer, fid), wkb in (raw_geometries or {}).items():
            store_raw_geometry(gpkg, layer, fid, wkb)
        return zip_files(out_zip, {GPKG_NAME: gpkg})


def header_overstates(good_gpkg: Path, out_zip: Path, layer: str, keep: int = 0) -> Path:
    """The good GeoPackage with all but ``keep`` rows of ``layer`` deleted, while its header
    (``gpkg_ogr_contents``) still counts every feature, as a half-written file would."""
    with tempfile.TemporaryDirectory() as tmp:
        gpkg = Path(tmp) / GPKG_NAME
        gpkg.write_bytes(good_gpkg.read_bytes())
        with sqlite3.connect(gpkg) as db:
            (count,) = db.execute("SELECT feature_count FROM gpkg_ogr_contents "
                                  "WHERE table_name = ?", (layer,)).fetchone()
            table = layer.replace('"', '""')
            db.execute(f'DELETE FROM "{table}" WHERE fid NOT IN '  # noqa: S608 - a test's name
                       f'(SELECT fid FROM "{table}" ORDER BY fid LIMIT ?)', (keep,))
            db.execute("UPDATE gpkg_ogr_contents SET feature_count = ? WHERE table_name = ?",
                       (count, layer))
        db.close()
        return zip_files(out_zip, {GPKG_NAME: gpkg})


def store_raw_geometry(gpkg: Path, layer: str, fid: int, wkb: bytes) -> None:
    """Put ``wkb`` behind a GeoPackage geometry header (no envelope, SRS 4326) into one
    feature, bypassing GDAL. The layer's triggers call SpatiaLite functions plain SQLite
    lacks, so they are dropped first: they only keep the spatial index, which loads don't
    read."""
    blob = b"GP\x00\x01" + (4326).to_bytes(4, "little") + wkb
    with sqlite3.connect(gpkg) as db:
        triggers = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                              "AND tbl_name = ?", (layer,)).fetchall()
        for (name,) in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute(f'UPDATE "{layer}" SET "{GEOMETRY}" = ? WHERE fid = ?', (blob, fid))


# --- timezone-like shapefiles ---------------------------------------------------------

def craft_timezone(good_zip: Path, out_zip: Path, edit: Edit | None = None, *,
                   encoding: str = "UTF-8", declared: str | None = None) -> Path:
    """The good shapefile, edited, written in ``encoding`` with a .cpg that says ``declared``."""
    layer = read_layers(f"/vsizip/{good_zip}/{TIMEZONE_STEM}.shp")[TIMEZONE_STEM]
    table = edit(layer) if edit else layer
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / f"{TIMEZONE_STEM}.shp"
        raw.write_arrow(table, str(shp), layer=TIMEZONE_STEM, driver="ESRI Shapefile",
                        geometry_name=GEOMETRY, geometry_type="Polygon", crs="EPSG:4326",
                        encoding=encoding)
        if declared:
            shp.with_suffix(".cpg").write_text(declared)
        members = {p.name: p for p in sorted(Path(tmp).iterdir())}
        return zip_files(out_zip, members)


# --- zip-level faults -----------------------------------------------------------------

def zip_files(out_zip: Path, members: Mapping[str, Path | bytes],
              method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip of ``members`` (name → file or bytes), written whole then moved into place."""
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    part = out_zip.with_name(out_zip.name + ".part")
    with zipfile.ZipFile(part, "w", method) as zf:
        for name, content in members.items():
            info = zipfile.ZipInfo(name)  # as given: zf.write would strip a leading "/"
            info.compress_type = method
            zf.writestr(info, content.read_bytes() if isinstance(content, Path) else content)
    part.replace(out_zip)
    return out_zip


def corrupt(archive: Path, at: float) -> Path:
    """Flip bytes at fraction ``at`` of the first member's data; its directory stays intact."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[0]
    data = bytearray(archive.read_bytes())
    start = info.header_offset + _LOCAL.size + len(info.filename.encode()) + len(info.extra)
    middle = start + int(info.compress_size * at)
    data[middle:middle + 64] = bytes(b ^ 0x5A for b in data[middle:middle + 64])
    archive.write_bytes(bytes(data))
    return archive


def understate_size(archive: Path, declared: int) -> Path:
    """Make every member claim ``declared`` bytes unpacked, in both headers: a lying zip bomb."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        central = zf.start_dir
    for info in infos:
        _patch_size(data, info.header_offset, _LOCAL, 8, declared)
    offset = central
    for _ in infos:
        fields = _CENTRAL.unpack_from(data, offset)
        _patch_size(data, offset, _CENTRAL, 9, declared)
        offset += _CENTRAL.size + fields[10] + fields[11] + fields[12]
    archive.write_bytes(bytes(data))
    return archive


def deflate_padded(out_zip: Path, name: str, data: bytes, padding: int) -> Path:
    """One member whose deflate stream ends early, followed by ``padding`` random bytes.

    Its declared sizes are honest about what it unpacks to and how many bytes it
    occupies, so the declared ratio looks modest; only the bytes actually inflated
    show how far each compressed byte goes (a bomb the declared ratio can't see).
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = deflate.compress(data) + deflate.flush() + os.urandom(padding)
    zip_files(out_zip, {name: stream}, method=zipfile.ZIP_STORED)
    raw = bytearray(out_zip.read_bytes())
    with zipfile.ZipFile(out_zip) as zf:
        (info,) = zf.infolist()
        central = zf.start_dir
    real = {"method": zipfile.ZIP_DEFLATED, "crc": zlib.crc32(data), "size": len(data)}
    _patch(raw, info.header_offset, _LOCAL, {3: real["method"], 6: real["crc"], 8: real["size"]})
    _patch(raw, central, _CENTRAL, {4: real["method"], 7: real["crc"], 9: real["size"]})
    out_zip.write_bytes(bytes(raw))
    return out_zip


def _patch_size(data: bytearray, offset: int, layout: struct.Struct, index: int,
                size: int) -> None:
    _patch(data, offset, layout, {index: size})


def _patch(data: bytearray, offset: int, layout: struct.Struct, values: dict[int, int]) -> None:
    fields = list(layout.unpack_from(data, offset))
    for index, value in values.items():
        fields[index] = value
    layout.pack_into(data, offset, *fields)
