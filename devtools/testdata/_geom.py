"""Vectorized polygon primitives shared by the GADM and timezone generators.

Every polygon is built from an axis-aligned *box*: its ring is star-shaped around the box
centre and jittered inward by less than ``MARGIN`` of the box's short side. So a ring always
lies inside its box and always encloses the box's *inner* rectangle (the box shrunk by that
margin). Children placed inside a parent's inner rectangle are therefore inside the parent's
polygon, and sibling boxes that do not overlap give polygons that do not overlap. No Python
code runs per vertex: coordinates are numpy arrays, geometries are built by shapely's
vectorized constructors.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]

MARGIN = 0.12  # depth of the band a ring wanders in, as a fraction of the box's short side
NO_DEFECT, BOWTIE, SPIKE = 0, 1, 2
_DEFECT_DEPTH = 0.04  # defects dig this much deeper (x margin): still inside the band
_MIN_RING = 8


def widths(boxes: F64) -> tuple[F64, F64]:
    """Width and height of each box."""
    return boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]


def shrink(boxes: F64, frac: float | F64) -> F64:
    """Boxes shrunk on every side by ``frac`` of their short side."""
    w, h = widths(boxes)
    d = np.minimum(w, h) * frac
    return np.column_stack([boxes[:, 0] + d, boxes[:, 1] + d, boxes[:, 2] - d, boxes[:, 3] - d])


def inner(boxes: F64) -> F64:
    """The rectangle every ring built on these boxes encloses."""
    return shrink(boxes, MARGIN)


def centre_box(boxes: F64, frac: float) -> F64:
    """A box of ``frac`` times the size, centred in each box (room for an enclave)."""
    w, h = widths(boxes)
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    return np.column_stack([cx - w * frac / 2, cy - h * frac / 2,
                            cx + w * frac / 2, cy + h * frac / 2])


def split_strip(boxes: F64, frac: F64) -> tuple[F64, F64]:
    """Split each box across its long side into (mainland, strip of ``frac``) for islands."""
    w, h = widths(boxes)
    wide = w >= h
    main = boxes.copy()
    strip = boxes.copy()
    cut_x = boxes[:, 2] - w * frac
    cut_y = boxes[:, 3] - h * frac
    main[:, 2] = np.where(wide, cut_x, boxes[:, 2])
    main[:, 3] = np.where(wide, boxes[:, 3], cut_y)
    strip[:, 0] = np.where(wide, cut_x, boxes[:, 0])
    strip[:, 1] = np.where(wide, boxes[:, 1], cut_y)
    return main, strip


def partition(n: int, bounds: tuple[float, float, float, float],
              rng: np.random.Generator) -> F64:
    """Guillotine-split ``bounds`` into ``n`` boxes, always cutting the largest one.

    Loops once per box (at most a few hundred), never per vertex.
    """
    x0, y0, x1, y1 = bounds
    heap: list[tuple[float, int, tuple[float, float, float, float]]] = [
        (-(x1 - x0) * (y1 - y0), 0, bounds)]
    serial = 1
    while len(heap) < n:
        _, _, (a, b, c, d) = heapq.heappop(heap)
        t = float(rng.uniform(0.35, 0.65))
        if c - a >= d - b:
            m = a + (c - a) * t
            parts = [(a, b, m, d), (m, b, c, d)]
        else:
            m = b + (d - b) * t
            parts = [(a, b, c, m), (a, m, c, d)]
        for p in parts:
            heapq.heappush(heap, (-(p[2] - p[0]) * (p[3] - p[1]), serial, p))
            serial += 1
    boxes = np.array([item[2] for item in sorted(heap, key=lambda item: item[1])],
                     dtype=np.float64)
    return boxes.reshape(-1, 4)


def _group_fractions(sizes: I64, rng: np.random.Generator) -> tuple[F64, F64]:
    """Random, ordered [lo, hi) fractions of 0..1 per element of each group of ``sizes``."""
    total = int(sizes.sum())
    wts = rng.uniform(0.7, 1.3, total)
    cs = np.concatenate([[0.0], np.cumsum(wts)])
    ends = np.cumsum(sizes)
    starts = ends - sizes
    grp = np.repeat(np.arange(len(sizes)), sizes)
    base = cs[starts][grp]
    span = (cs[ends] - cs[starts])[grp]
    lo = (cs[:-1] - base) / span
    hi = (cs[1:] - base) / span
    hi[np.cumsum(sizes)[sizes > 0] - 1] = 1.0  # last cell ends exactly at the edge
    return lo, hi


@dataclass
class Grid:
    """Children cells from :func:`subdivide`; ``spare`` is a free cell per parent if any."""

    boxes: F64
    parent: I64
    rank: I64  # 0-based position of the child within its parent
    spare: F64  # (P, 4), NaN where the parent's grid is full
    has_spare: Bool


def subdivide(boxes: F64, counts: I64, rng: np.random.Generator) -> Grid:
    """Cut each box into a near-square grid of ``counts[i]`` cells (uneven rows/columns)."""
    counts = counts.astype(np.int64)
    w, h = widths(boxes)
    safe = np.maximum(counts, 1)
    cols = np.clip(np.rint(np.sqrt(safe * w / h)), 1, safe).astype(np.int64)
    rows = np.where(counts > 0, -(-counts // cols), 0).astype(np.int64)
    cols = np.where(counts > 0, cols, 0)
    col_lo, col_hi = _group_fractions(cols, rng)
    row_lo, row_hi = _group_fractions(rows, rng)
    col_start = np.cumsum(cols) - cols
    row_start = np.cumsum(rows) - rows

    def cell(p: I64, i: I64) -> F64:
        c = col_start[p] + i % cols[p]
        r = row_start[p] + i // cols[p]
        b = boxes[p]
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return np.column_stack([b[:, 0] + bw * col_lo[c], b[:, 1] + bh * row_lo[r],
                                b[:, 0] + bw * col_hi[c], b[:, 1] + bh * row_hi[r]])

    parent = np.repeat(np.arange(len(boxes)), counts)
    rank = np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts)
    child_boxes = cell(parent, rank) if len(parent) else np.empty((0, 4))
    has_spare = rows * cols > counts
    spare = np.full((len(boxes), 4), np.nan)
    idx = np.flatnonzero(has_spare)
    if len(idx):
        spare[idx] = cell(idx, counts[idx])
    return Grid(child_boxes, parent, rank, spare, has_spare)


def min_vertices(boxes: F64) -> I64:
    """Fewest ring vertices that still put every box corner on its own vertex."""
    w, h = widths(boxes)
    return np.maximum(np.ceil(2 * (w + h) / np.minimum(w, h)).astype(np.int64) + 1, _MIN_RING)


def star_rings(boxes: F64, counts: I64, rng: np.random.Generator,
               defects: I8 | None = None) -> tuple[F64, I64]:
    """Closed, jittered rings, one per box: flat ``(M, 2)`` coordinates and ring lengths.

    Points walk the box perimeter (corners included, so consecutive points always share a
    side strip) and are pulled toward the centre by a smooth, coastline-like depth below
    ``MARGIN``; the ring is star-shaped, hence simple, unless a defect is requested.
    """
    n = np.maximum(counts.astype(np.int64), min_vertices(boxes))
    r = len(boxes)
    lengths = n + 1  # closing vertex
    ring = np.repeat(np.arange(r), lengths)
    k = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    nv = n[ring]
    k = k % nv  # the closing vertex sits where vertex 0 does
    w, h = widths(boxes)
    perim = 2 * (w + h)
    step = perim / n
    s = k * step[ring]
    # snap the vertex nearest each corner onto the corner
    for corner in (w, w + h, 2 * w + h):
        kc = np.rint(corner / step).astype(np.int64)
        s = np.where(k == kc[ring], corner[ring], s)
    wv, hv = w[ring], h[ring]
    x0, y0, x1, y1 = (boxes[ring, i] for i in range(4))
    bx = np.select([s < wv, s < wv + hv, s < 2 * wv + hv], [x0 + s, x1, x1 - (s - wv - hv)], x0)
    by = np.select([s < wv, s < wv + hv, s < 2 * wv + hv], [y0, y0 + (s - wv), y1],
                   y1 - (s - 2 * wv - hv))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    reach = MARGIN * np.minimum(wv, hv)
    depth = _depth(k / nv, ring, r, rng, step[ring] / reach) * reach
    vx, vy = bx - cx, by - cy
    norm = np.hypot(vx, vy)
    coords = np.column_stack([bx - depth * vx / norm, by - depth * vy / norm])
    ends = np.cumsum(lengths)
    coords[ends - 1] = coords[ends - lengths]  # close each ring exactly (noise differs)
    if defects is not None and np.any(defects != NO_DEFECT):
        coords, lengths = _add_defects(coords, lengths, boxes, defects)
    return coords, lengths


def _depth(t: F64, ring: I64, r: int, rng: np.random.Generator, jitter: F64) -> F64:
    """Inward depth in [0.05, 0.9) of the margin: two periodic waves plus noise.

    The noise is at most about one step between vertices (``jitter``, in margin units), as
    on a real coastline: neighbouring segments stay short and local. Noise as wide as the
    margin would make every segment a long radial zigzag, a pathological case for GEOS's
    validity check that real data never presents.
    """
    f1 = rng.integers(2, 7, r)[ring]
    f2 = rng.integers(7, 31, r)[ring]
    p1 = rng.uniform(0, 2 * np.pi, r)[ring]
    p2 = rng.uniform(0, 2 * np.pi, r)[ring]
    u = (0.5 + 0.2 * np.sin(2 * np.pi * f1 * t + p1) + 0.15 * np.sin(2 * np.pi * f2 * t + p2)
         + np.minimum(jitter, 0.15) * (2 * rng.random(len(t)) - 1))
    return 0.05 + 0.85 * np.clip(u, 0.0, 0.999)


def _add_defects(coords: F64, lengths: I64, boxes: F64, defects: I8) -> tuple[F64, I64]:
    """Make the chosen rings invalid: a bow-tie (crossing detour) or a spike (out and back).

    Both stay inside the ring's band, so nesting and containment survive ``make_valid``.
    """
    idx = np.flatnonzero(defects != NO_DEFECT)
    starts = np.cumsum(lengths) - lengths
    i = starts[idx] + (lengths[idx] - 1) // 2  # a vertex half way round the ring
    w, h = widths(boxes[idx])
    centre = np.column_stack([(boxes[idx, 0] + boxes[idx, 2]) / 2,
                              (boxes[idx, 1] + boxes[idx, 3]) / 2])
    delta = (_DEFECT_DEPTH * MARGIN * np.minimum(w, h))[:, None]

    def inward(p: F64) -> F64:
        v = centre - p
        return p + delta * v / np.hypot(v[:, 0], v[:, 1])[:, None]

    p_i, p_next = coords[i], coords[i + 1]
    bowtie = defects[idx] == BOWTIE
    # bow-tie: p_i -> B -> A -> p_next, where A/B are p_i/p_next pulled inward: the detour's
    # two diagonals of a convex quadrilateral cross. spike: p_i -> S -> p_i -> p_next.
    first = np.where(bowtie[:, None], inward(p_next), inward(p_i))
    second = np.where(bowtie[:, None], inward(p_i), p_i)
    values = np.empty((2 * len(idx), 2))
    values[0::2], values[1::2] = first, second
    coords = np.insert(coords, np.repeat(i + 1, 2), values, axis=0)
    lengths = lengths.copy()
    lengths[idx] += 2
    return coords, lengths


@dataclass
class Layout:
    """Boxes and vertex budgets of a set of features, before any coordinates exist.

    A feature has a mainland polygon (``main``) with optional holes, plus optional island
    polygons. Owners are sorted ascending so a feature range can be sliced cheaply.
    """

    main: F64
    main_n: I64
    island_box: F64
    island_owner: I64
    island_n: I64
    hole_box: F64
    hole_owner: I64
    hole_n: I64
    defect: I8
    single: Bool  # emit a Polygon rather than a MultiPolygon when there is one part

    def __len__(self) -> int:
        return len(self.main)

    def slice(self, start: int, stop: int) -> Layout:
        """Features ``start:stop``, owners re-based to 0."""
        ia, ib = np.searchsorted(self.island_owner, [start, stop])
        ha, hb = np.searchsorted(self.hole_owner, [start, stop])
        return Layout(self.main[start:stop], self.main_n[start:stop],
                      self.island_box[ia:ib], self.island_owner[ia:ib] - start,
                      self.island_n[ia:ib], self.hole_box[ha:hb],
                      self.hole_owner[ha:hb] - start, self.hole_n[ha:hb],
                      self.defect[start:stop], self.single[start:stop])

    def vertex_budget(self) -> I64:
        """Approximate vertices per feature, to cut batches of bounded memory."""
        total = self.main_n.copy()
        np.add.at(total, self.island_owner, self.island_n)
        np.add.at(total, self.hole_owner, self.hole_n)
        return total


@dataclass
class Built:
    """Geometries of a layout slice plus the facts a manifest reports."""

    geoms: Obj
    vertices: int
    holes: int  # features with at least one hole
    multipart: int  # features with more than one polygon


def build(layout: Layout, rng: np.random.Generator) -> Built:
    """Turn a layout into (Multi)Polygon geometries with shapely's vectorized constructors."""
    nf, ni, nh = len(layout), len(layout.island_box), len(layout.hole_box)
    feature = np.concatenate([np.arange(nf), layout.hole_owner, layout.island_owner])
    part = np.concatenate([np.zeros(nf + nh, np.int64), 1 + np.arange(ni)])
    hole = np.concatenate([np.zeros(nf, np.int64), 1 + np.arange(nh), np.zeros(ni, np.int64)])
    order = np.lexsort((hole, part, feature))
    boxes = np.concatenate([layout.main, layout.hole_box, layout.island_box])[order]
    counts = np.concatenate([layout.main_n, layout.hole_n, layout.island_n])[order]
    defects = np.concatenate([layout.defect, np.zeros(nh + ni, np.int8)])[order]
    feature, part = feature[order], part[order]
    new_poly = np.ones(len(order), bool)
    new_poly[1:] = (feature[1:] != feature[:-1]) | (part[1:] != part[:-1])
    ring_poly = np.cumsum(new_poly) - 1
    poly_feature = feature[new_poly]
    coords, lengths = star_rings(boxes, counts, rng, defects)
    rings = shapely.linearrings(coords, indices=np.repeat(np.arange(len(lengths)), lengths))
    polys = shapely.polygons(rings, indices=ring_poly)
    geoms = shapely.multipolygons(polys, indices=poly_feature)
    parts = np.bincount(poly_feature, minlength=nf)
    single = layout.single & (parts == 1)
    if single.any():
        first = np.searchsorted(poly_feature, np.arange(nf))
        geoms[single] = polys[first[single]]
    return Built(geoms, int(lengths.sum()), int(len(np.unique(layout.hole_owner))),
                 int((parts > 1).sum()))


def batches(budget: I64, max_vertices: int, max_features: int | None = None
            ) -> list[tuple[int, int]]:
    """Cut features into ``[start, stop)`` ranges of about ``max_vertices`` each.

    Bounds memory: only one range's coordinates and geometries exist at a time. A single
    feature larger than the limit gets a range of its own.
    """
    out: list[tuple[int, int]] = []
    start, n = 0, len(budget)
    cap = max_features or n
    cum = np.cumsum(budget)
    while start < n:
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + max_vertices, side="right"))
        stop = min(max(stop, start + 1), start + cap, n)
        out.append((start, stop))
        start = stop
    return out
