"""Where each polygon of a MultiPolygon's WKB starts and ends, read from the bytes alone.

A huge MultiPolygon (a timezone of 258 islands and 1.35 M vertices) can then be
decoded and checked one group of parts at a time: the memory GEOS needs follows
the group, not the whole geometry plus a copy of every part.
"""

from __future__ import annotations

import struct

import numpy as np

#: Headers of a 2D little-endian MultiPolygon and Polygon: the only layout walked here.
MULTIPOLYGON_2D = b"\x01\x06\x00\x00\x00"
POLYGON_2D = b"\x01\x03\x00\x00\x00"
_COUNT = struct.Struct("<I")
_POINT_BYTES = 16


def polygon_spans(wkb: bytes) -> list[tuple[int, int]] | None:
    """``(start, end)`` of every polygon in a 2D little-endian MultiPolygon's WKB.

    None when the bytes are anything else (another type, Z/M, big-endian, a polygon
    without rings, a count that runs past the end or bytes left over), so that the
    caller takes the general path, which reports what is wrong.
    """
    if wkb[:5] != MULTIPOLYGON_2D or len(wkb) < 9:
        return None
    (parts,) = _COUNT.unpack_from(wkb, 5)
    spans, at, size = [], 9, len(wkb)
    for _ in range(parts):
        start = at
        if at + 9 > size or wkb[at:at + 5] != POLYGON_2D:
            return None
        (rings,) = _COUNT.unpack_from(wkb, at + 5)
        if rings == 0:
            return None
        at += 9
        for _ in range(rings):
            if at + 4 > size:
                return None
            (points,) = _COUNT.unpack_from(wkb, at)
            at += 4 + points * _POINT_BYTES
        if at > size:
            return None
        spans.append((start, at))
    return spans if spans and at == size else None


def groups(spans: list[tuple[int, int]], group_bytes: int) -> list[list[tuple[int, int]]]:
    """Consecutive spans in groups of about ``group_bytes`` (a bigger span is a group alone)."""
    out: list[list[tuple[int, int]]] = [[]]
    held = 0
    for span in spans:
        if out[-1] and held + span[1] - span[0] > group_bytes:
            out.append([])
            held = 0
        out[-1].append(span)
        held += span[1] - span[0]
    return out


def lengths(wkb: np.ndarray) -> np.ndarray:
    """Bytes of each WKB in an object array, 0 where it is None."""
    return np.fromiter((0 if value is None else len(value) for value in wkb), dtype=np.int64,
                       count=len(wkb))
