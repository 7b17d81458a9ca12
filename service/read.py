"""Read source layers as Arrow batches of WKB, one bounded feature range at a time.

pyogrio hands back Arrow record batches with the geometry as WKB, so no Python
object is made per feature or per vertex. A chunk is a fid range; GeoPackage
answers ``fid BETWEEN`` from its rowid index and a shapefile from its ``.shx``,
so a worker reads only its own features.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
from pyogrio import raw
from pyogrio.errors import DataLayerError, DataSourceError

from service.errors import BadSource

#: GDAL's OGR field type (and subtype) → PostgreSQL column type.
PG_TYPES = {
    "OFTString": "text", "OFTInteger": "integer", "OFTInteger64": "bigint",
    "OFTReal": "double precision", "OFTDate": "date", "OFTDateTime": "timestamptz",
    "OFTTime": "time", "OFTBinary": "bytea",
}
PG_SUBTYPES = {"OFSTBoolean": "boolean", "OFSTInt16": "smallint", "OFSTFloat32": "real"}
POLYGONAL = {"Polygon", "MultiPolygon", "Polygon Z", "MultiPolygon Z", "Polygon M",
             "MultiPolygon M", "Polygon ZM", "MultiPolygon ZM", "Unknown", "GeometryCollection"}
#: Rows per Arrow batch: big enough to amortize GDAL calls, small enough to bound memory.
BATCH_ROWS = 4096


@dataclass(frozen=True)
class SourceField:
    name: str
    pg_type: str


@dataclass(frozen=True)
class LayerInfo:
    """What a layer holds, from its header; reading it costs no feature I/O."""

    name: str
    driver: str
    count: int
    fields: tuple[SourceField, ...]
    geometry_type: str
    crs: str | None
    fid_column: str


def layer_names(path: Path) -> list[str]:
    try:
        return [str(row[0]) for row in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError) as exc:
        raise BadSource(f"GDAL can't open the file: {exc}", file=path.name,
                        hint="the download may be damaged; delete the cache entry and re-run"
                        ) from exc


def layer_info(path: Path, layer: str) -> LayerInfo:
    """Header facts of ``layer``; a missing layer is an error that lists the ones present."""
    try:
        info = pyogrio.read_info(path, layer=layer)
    except (DataSourceError, DataLayerError) as exc:
        present = ", ".join(layer_names(path)) or "none"
        raise BadSource(f"layer {layer!r} can't be read ({exc}); layers present: {present}",
                        file=path.name,
                        hint="upstream renamed or removed the layer; update the catalog") from exc
    fields = tuple(
        SourceField(str(name), PG_SUBTYPES.get(sub) or PG_TYPES.get(ogr, "text"))
        for name, ogr, sub in zip(info["fields"], info["ogr_types"], info["ogr_subtypes"])
    )
    return LayerInfo(name=layer, driver=info["driver"], count=int(info["features"]),
                     fields=fields, geometry_type=str(info["geometry_type"]),
                     crs=info["crs"], fid_column=info["fid_column"] or "")


def feature_sizes(path: Path, info: LayerInfo) -> tuple[np.ndarray, np.ndarray]:
    """Every fid in order, with the bytes of its geometry: the weights chunks are cut by.

    Read from the GeoPackage's SQLite table or the shapefile's ``.shx`` index,
    never by decoding features; other formats weigh every feature alike.
    """
    if info.driver == "GPKG":
        return _gpkg_sizes(path, info)
    if info.driver == "ESRI Shapefile" and path.with_suffix(".shx").exists():
        return _shx_sizes(path.with_suffix(".shx"), info.count)
    fids = raw.read(path, layer=info.name, read_geometry=False, columns=[],
                    return_fids=True)[0]
    return np.asarray(fids, dtype=np.int64), np.ones(len(fids), dtype=np.int64)


def _gpkg_sizes(path: Path, info: LayerInfo) -> tuple[np.ndarray, np.ndarray]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (geom_col,) = db.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (info.name,)
        ).fetchone()
        fid, geom, table = (_sqlite_ident(n) for n in (info.fid_column, geom_col, info.name))
        # Identifiers can't be bound parameters; each is quoted by _sqlite_ident.
        query = f'SELECT "{fid}", coalesce(length("{geom}"), 0) FROM "{table}" ORDER BY 1'  # noqa: S608
        rows = db.execute(query).fetchall()
    pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _shx_sizes(shx: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The .shx holds (offset, length) per record, big-endian 16-bit words, after 100 bytes."""
    index = np.fromfile(shx, dtype=">i4", offset=100).reshape(-1, 2)
    sizes = index[:, 1].astype(np.int64) * 2
    return np.arange(len(sizes), dtype=np.int64), sizes


def _sqlite_ident(name: str) -> str:
    return name.replace('"', '""')


def fid_filter(fid_column: str, first: int, last: int) -> str:
    """An attribute filter selecting fids ``first..last``; a GeoPackage answers it from its
    rowid index."""
    column = f'"{_sqlite_ident(fid_column)}"' if fid_column else "FID"
    return f"{column} >= {int(first)} AND {column} <= {int(last)}"


@dataclass
class Batch:
    """A batch of features: fid and attributes as Arrow, geometry as WKB ``bytes`` objects."""

    attributes: pa.RecordBatch
    wkb: np.ndarray
    #: Bytes of each WKB (0 where NULL), from Arrow's offsets: no pass over the objects.
    wkb_bytes: np.ndarray


def batches(path: Path, layer: str, first: int, last: int, columns: list[str], *,
            driver: str, fid_column: str, batch_rows: int = BATCH_ROWS,
            expected: int | None = None) -> Iterator[Batch]:
    """Batches of fids ``first..last`` of ``layer``: fid and the named columns, then WKB
    geometry. ``driver`` and ``fid_column`` are the layer's, as :func:`layer_info` found
    them when it was planned.

    Once ``expected`` features are read, the file is closed before the last batch is
    handed out. GDAL keeps its read buffers until then: 42 MB after reading the largest
    timezone, which would otherwise stay held while that feature is repaired and copied.
    """
    kwargs: dict[str, Any] = dict(layer=layer, columns=columns, return_fids=True,
                                  use_pyarrow=True, batch_size=batch_rows)
    if driver == "ESRI Shapefile":
        # Shapefile fids are record numbers; asking for them by id seeks through the .shx,
        # where an attribute filter would scan every record (measured 8x slower).
        kwargs["fids"] = np.arange(first, last + 1)
    else:
        kwargs["where"] = fid_filter(fid_column, first, last)
    try:
        with ExitStack() as source:
            meta, reader = source.enter_context(raw.open_arrow(path, **kwargs))
            geometry = meta["geometry_name"] or "wkb_geometry"
            fid = meta["fid_column"] or "OGC_FID"
            stream, seen, ready = iter(reader), 0, []
            while True:
                try:
                    batch = _check_text(_standardize(next(stream), fid, geometry, columns),
                                        columns, layer, path)
                except StopIteration:
                    return
                seen += batch.num_rows
                column = batch.column("__wkb")
                wkb = np.asarray(column.to_numpy(zero_copy_only=False))
                wkb_bytes = pc.binary_length(column).fill_null(0).to_numpy()
                del column
                attributes = batch.drop_columns(["__wkb"])
                del batch
                if seen == expected:
                    attributes = _owned(attributes)
                    source.close()
                ready.append(Batch(attributes, wkb, wkb_bytes))
                del attributes, wkb, wkb_bytes
                # Nothing in this frame names the batch while suspended, so the consumer
                # frees each copy of it as soon as it is done with it.
                yield ready.pop()
                if seen == expected:
                    return
    except (DataSourceError, DataLayerError) as exc:
        raise BadSource(f"can't read layer {layer!r} features {first}..{last}: {exc}",
                        file=path.name, hint="the file may be damaged; re-run to re-download"
                        ) from exc


def _owned(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A copy in memory of our own: GDAL's Arrow arrays may not outlive the open file."""
    return batch.take(pa.array(np.arange(batch.num_rows)))


def _check_text(batch: pa.RecordBatch, columns: list[str], layer: str,
                path: Path) -> pa.RecordBatch:
    """Refuse text that is not UTF-8, naming the fids, rather than load it garbled.

    GDAL passes a field's bytes through when the file declares UTF-8 (a shapefile's
    ``.cpg``, every GeoPackage), so a wrong declaration reaches us as invalid strings.
    """
    for name in columns:
        column = batch.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            raise _not_utf8(batch, name, layer, path) from None
    return batch


def _not_utf8(batch: pa.RecordBatch, name: str, layer: str, path: Path) -> BadSource:
    column = batch.column(name)
    raw_type = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
    values = column.view(raw_type).to_pylist()
    fids = batch.column("__fid").to_pylist()
    bad = [(fid, value) for fid, value in zip(fids, values) if value is not None
           and not _decodes(value)]
    shown = ", ".join(f"fid {fid}: {value[:60]!r}" for fid, value in bad[:5])
    return BadSource(f"layer {layer!r}: field {name!r} is not valid UTF-8 in {len(bad)} "
                     f"feature(s) ({shown})", file=path.name,
                     hint="the file declares UTF-8 but holds another encoding (check a "
                          "shapefile's .cpg); report it upstream")


def _decodes(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _standardize(batch: pa.RecordBatch, fid: str, geometry: str,
                 columns: list[str]) -> pa.RecordBatch:
    names = [fid, *columns, geometry]
    return pa.RecordBatch.from_arrays([batch.column(n) for n in names],
                                      names=["__fid", *columns, "__wkb"])
