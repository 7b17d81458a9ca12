"""Turn a batch of source WKB into valid MultiPolygon WKB, vectorized.

Everything here works on whole arrays with shapely 2, whose GEOS calls release
the GIL; only the few invalid features are touched by ``make_valid``. Polygons
are promoted; invalid geometries are made valid with GEOS's "structure" method,
which keeps their polygonal parts; null and empty geometries stay NULL and are
counted. A geometry with no polygonal part left, or outside lon/lat bounds, is
reported by fid, since loading it would silently change what upstream published.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import shapely

from service.repair import validity, wkb_parts
from service.repair.validity import COLLECTION, MULTIPOLYGON, POLYGON, is_valid, outside_lonlat

__all__ = ["Repaired", "is_valid", "repair"]

#: WKB header of a little-endian MultiPolygon holding one polygon.
_MULTI_OF_ONE = b"\x01" + MULTIPOLYGON.to_bytes(4, "little") + (1).to_bytes(4, "little")


@dataclass
class Repaired:
    """The batch, ready for COPY, and what it took to get there."""

    wkb: np.ndarray
    empty: int = 0
    repaired: int = 0
    promoted: int = 0
    parts_dropped: int = 0
    unrepairable: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    out_of_bounds: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    malformed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def repair(wkb: np.ndarray, lengths: np.ndarray | None = None) -> Repaired:
    """Valid MultiPolygon WKB per input row (None where the source had no geometry).

    ``lengths``: each row's bytes (0 for None), if the caller has them already.
    """
    lengths = wkb_parts.lengths(wkb) if lengths is None else lengths
    apart = np.zeros(len(wkb), dtype=bool)
    for row in np.flatnonzero(lengths >= validity.BIG_WKB_BYTES):
        apart[row] = validity.valid_apart(wkb[row])
    if not apart.any():
        return _repair(wkb, lengths > 0)
    rest = np.flatnonzero(~apart)
    done = _repair(wkb[rest], lengths[rest] > 0)
    out = np.empty(len(wkb), dtype=object)
    out[rest] = done.wkb
    out[apart] = wkb[apart]
    return replace(done, wkb=out, unrepairable=rest[done.unrepairable],
                   out_of_bounds=rest[done.out_of_bounds], malformed=rest[done.malformed])


def _repair(wkb: np.ndarray, present: np.ndarray) -> Repaired:
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    malformed = np.flatnonzero(shapely.is_missing(geoms) & present)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    invalid = ~missing & ~is_valid(geoms)
    result = Repaired(wkb=np.empty(len(geoms), dtype=object), malformed=malformed,
                      empty=int(missing.sum()) - len(malformed), repaired=int(invalid.sum()))
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid], method="structure",
                                            keep_collapsed=False)
    types = shapely.get_type_id(geoms)
    geoms, result.promoted, result.parts_dropped = _as_multipolygons(geoms, ~missing)
    lost = ~missing & (shapely.is_missing(geoms) | shapely.is_empty(geoms))
    result.unrepairable = np.flatnonzero(lost)
    result.out_of_bounds = _out_of_bounds(geoms)
    keep = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    untouched = keep & ~invalid
    _reuse_source_wkb(result.wkb, wkb, untouched, types)
    rebuilt = keep & (result.wkb == None)  # noqa: E711 - elementwise test on an object array
    result.wkb[rebuilt] = shapely.to_wkb(geoms[rebuilt], output_dimension=2, byte_order=1)
    return result


def _reuse_source_wkb(out: np.ndarray, wkb: np.ndarray, untouched: np.ndarray,
                      types: np.ndarray) -> None:
    """Valid 2D source WKB is already what PostGIS wants: keep its bytes, don't re-encode.

    A little-endian MultiPolygon is copied as is; a Polygon becomes a MultiPolygon of one
    by prefixing a header, which is exactly the WKB GEOS would write.
    """
    for row in np.flatnonzero(untouched & ((types == POLYGON) | (types == MULTIPOLYGON))):
        source = wkb[row]
        header = source[:5]
        if header == wkb_parts.MULTIPOLYGON_2D:
            out[row] = source
        elif header == wkb_parts.POLYGON_2D:
            out[row] = _MULTI_OF_ONE + source


def _as_multipolygons(geoms: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Promote Polygons; reduce collections (and anything else) to their polygons."""
    types = shapely.get_type_id(geoms)
    out = geoms.copy()
    poly = present & (types == POLYGON)
    if poly.any():
        out[poly] = shapely.multipolygons(geoms[poly], indices=np.arange(int(poly.sum())))
    other = present & (types != POLYGON) & (types != MULTIPOLYGON)
    dropped = 0
    if other.any():
        out[other], dropped = _polygonal_parts(geoms[other])
    return out, int(poly.sum()), dropped


def _polygonal_parts(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """The polygons inside each geometry, as one MultiPolygon per input (None if none)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    while True:
        nested = np.isin(shapely.get_type_id(parts), (MULTIPOLYGON, COLLECTION, 4, 5))
        if not nested.any():
            break
        inner, inner_owner = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], inner])
        owner = np.concatenate([owner[~nested], owner[nested][inner_owner]])
    is_poly = (shapely.get_type_id(parts) == POLYGON) & ~shapely.is_empty(parts)
    out = np.full(len(geoms), None, dtype=object)
    kept_owner = owner[is_poly]
    if len(kept_owner):
        order = np.argsort(kept_owner, kind="stable")
        owners = np.unique(kept_owner)
        built = shapely.multipolygons(parts[is_poly][order],
                                      indices=np.searchsorted(owners, kept_owner[order]))
        out[owners] = built
    return out, int((~is_poly).sum())


def _out_of_bounds(geoms: np.ndarray) -> np.ndarray:
    return np.flatnonzero(outside_lonlat(shapely.bounds(geoms)))
