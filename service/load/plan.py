"""Plan a layer: check its header against the catalog and cut it into chunks.

Chunks are contiguous fid ranges cut by geometry bytes as well as by count, so
that a layer of a few huge polygons (time zones) splits as evenly as one of
many small ones (GADM level 4), and many workers share one dataset.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from service import data_warnings
from service.catalog import Dataset, Layer
from service.errors import BadSource
from service.load import staging
from service.load.columns import plan_columns
from service.load.records import Chunk, LayerPlan, PlannedLayer
from service.read import POLYGONAL, LayerInfo, feature_sizes, layer_info
from service.settings import Settings

ACCEPTED_CRS = {"EPSG:4326", "OGC:CRS84", None}
#: Where a driver keeps the feature count that GDAL reports without reading the features.
HEADERS = {"GPKG": "gpkg_ogr_contents"}
#: How much more a chunk's largest feature weighs than the rest. A chunk holds about three
#: copies of its WKB (Arrow, bytes, GEOS) while GEOS validates one geometry at a time with a
#: noding index of about six times that geometry's WKB: one 22 MB polygon peaked at 171 MB,
#: an 8 MB chunk of 3,700 small ones at a fraction of that.
LARGEST_FEATURE_FACTOR = 2


def plan_layer(ds: Dataset, layer: Layer, path: Path, load_id: int,
               settings: Settings, *, part: str = "") -> PlannedLayer:
    """Check the layer of the file ``path`` against the catalog and cut it into chunks.

    ``part``: the file is one of several of the load (a GADM country), named on its chunks.
    """
    try:
        info = layer_info(path, ds.source.layer_name(layer.name))
        _check_layer(layer, info)
        planned = plan_columns(layer, info)
        fids, sizes = feature_sizes(path, info)
        _check_count(layer, info, len(fids))
    except BadSource as exc:
        exc.where(dataset=ds.name, file=path.name)
        raise
    plan = LayerPlan(
        layer=layer.name, target_table=layer.table,
        staging_table=staging.staging_name(ds.stem, layer.table, load_id),
        driver=info.driver, fid_column=info.fid_column, columns=planned.columns,
        source_count=len(fids))
    chunks = cut_chunks(fids, sizes, settings.chunk_features, settings.chunk_bytes)
    return PlannedLayer(plan, [replace(c, part=part) for c in chunks] if part else chunks,
                        planned.warnings)


def merge(layer: str, planned: list[PlannedLayer]) -> PlannedLayer:
    """One layer's plans from several files (one per country) as one: the same staging
    table, every file's chunks, the features of all. The files must agree on the columns,
    since their rows go into one table."""
    first = planned[0]
    for other in planned[1:]:
        if other.plan.columns != first.plan.columns:
            raise BadSource(f"layer {layer!r} has other fields in {other.chunks[0].part} than in "
                            f"{first.chunks[0].part}", hint="load these countries in separate "
                                                            "runs, into separate schemas")
    warnings = list(dict.fromkeys(w for p in planned for w in p.warnings))
    return PlannedLayer(replace(first.plan, source_count=sum(p.plan.source_count for p in planned)),
                        [c for p in planned for c in p.chunks], warnings)


def refuse_warnings(ds: Dataset, path: Path, planned: list[PlannedLayer]) -> None:
    """A strict load fails on schema drift that a default load would only warn about."""
    found = [w for layer in planned for w in layer.warnings]
    if found:
        raise data_warnings.refusal(found, "the file's schema differs from the catalog").where(
            dataset=ds.name, file=path.name)


def _check_layer(layer: Layer, info: LayerInfo) -> None:
    if info.count == 0:
        raise BadSource(f"layer {layer.name!r} is empty",
                        hint="upstream published an empty layer; keep the loaded version and "
                             "report it upstream")
    if info.geometry_type not in POLYGONAL:
        raise BadSource(f"layer {layer.name!r} holds {info.geometry_type} geometries, not "
                        "polygons", hint="the file is not the one the catalog describes; "
                                         "check the URL and member pattern")
    if info.crs not in ACCEPTED_CRS:
        raise BadSource(f"layer {layer.name!r} is in {info.crs}, not EPSG:4326",
                        hint="geoload loads lon/lat data as published; reproject upstream or "
                             "add a transform to the catalog")


def _check_count(layer: Layer, info: LayerInfo, rows: int) -> None:
    """The chunks are cut from the rows found, so a header that promises other rows means a
    damaged file: loading what is there would publish less (or more) than upstream says."""
    if info.count >= 0 and info.count != rows:
        header = HEADERS.get(info.driver, "the layer's header")
        raise BadSource(f"layer {layer.name!r}: its header ({header}) counts {info.count:,} "
                        f"features, but its table holds {rows:,}",
                        hint="the file is damaged or was written without updating its header; "
                             "keep the loaded version and report it upstream")


def cut_chunks(fids: np.ndarray, sizes: np.ndarray, max_features: int,
               max_bytes: int) -> list[Chunk]:
    """Contiguous fid ranges within both limits.

    A single feature heavier than ``max_bytes`` gets a chunk of its own. The weight, the
    memory a chunk takes in geometry bytes, is its bytes plus
    :data:`LARGEST_FEATURE_FACTOR` times its largest feature's.
    """
    cumulative = np.cumsum(sizes, dtype=np.int64)
    chunks = []
    start, total = 0, len(fids)
    while start < total:
        before = int(cumulative[start - 1]) if start else 0
        by_bytes = int(np.searchsorted(cumulative, before + max_bytes, side="right"))
        end = max(start + 1, min(start + max_features, by_bytes))
        weight = (int(cumulative[end - 1]) - before
                  + LARGEST_FEATURE_FACTOR * int(sizes[start:end].max()))
        chunks.append(Chunk(int(fids[start]), int(fids[end - 1]), end - start, weight))
        start = end
    return chunks
