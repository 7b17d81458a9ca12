"""timezone-boundary-builder-like ``timezones-with-oceans.shapefile.zip``.

The real file has ~445 zones and ~8 M vertices in one zipped shapefile with a single
``tzid`` field. What a loader must cope with is kept: very uneven, huge multi-part polygons
(a few zones hold hundreds of thousands of vertices), holes, a mix of Polygon and
MultiPolygon features, non-ASCII tzids in a UTF-8 .dbf, and a few invalid rings.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio.raw
import shapely

from devtools.testdata import _geom as g
from devtools.testdata._files import JsonManifest, pin_dbf_date, sha256_file, write_zip
from devtools.testdata._names import LAND_TZIDS, NON_ASCII_TZIDS, OCEAN_TZIDS

ZIP_NAME = "timezones-with-oceans.shapefile.zip"
STEM = "combined-shapefile-with-oceans"
MEMBERS = tuple(f"{STEM}.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg"))
WORLD = (-180.0, -85.0, 180.0, 85.0)
_BATCH_VERTICES = 500_000
_MAX_RING = 500_000  # vertices in the largest single ring; the rest of a zone is islands


@dataclass
class TimezoneManifest(JsonManifest):
    """What was written, so tests and benchmarks can check a loader's counts."""

    _tuples = ("members",)

    path: Path
    features: int
    vertices: int
    polygons: int
    multipolygons: int
    invalid: int
    holes: int  # features with at least one hole
    sha256: str
    size: int
    tzids: list[str] = field(default_factory=list)
    members: tuple[str, ...] = MEMBERS
    params: dict[str, Any] = field(default_factory=dict)



def make_timezone_zip(out_zip: Path, *, zones: int = 60, vertices: int = 300_000,
                      seed: int = 1, stem: str = STEM) -> TimezoneManifest:
    """Write a zipped ``combined-shapefile-with-oceans`` shapefile with ``zones`` features;
    ``stem`` names the shapefile of another variant (``combined-shapefile-now``...)."""
    members = tuple(f"{stem}.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg"))
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 10])
    tzids = pick_tzids(zones, rng)
    layout = _layout(zones, vertices, rng)
    total = polygons = multis = holes = 0
    with tempfile.TemporaryDirectory(dir=out_zip.parent, prefix=".tz-") as tmp:
        shp = Path(tmp) / f"{stem}.shp"
        for b, (start, stop) in enumerate(g.batches(layout.vertex_budget(), _BATCH_VERTICES)):
            built = g.build(layout.slice(start, stop), np.random.default_rng([seed, 11, b]))
            table = pa.table({"tzid": pa.array(tzids[start:stop], pa.string()),
                              "geometry": pa.array(shapely.to_wkb(built.geoms), pa.binary())})
            pyogrio.raw.write_arrow(table, str(shp), layer=stem, driver="ESRI Shapefile",
                                    geometry_name="geometry", geometry_type="Polygon",
                                    crs="EPSG:4326", encoding="UTF-8", append=b > 0)
            kinds = shapely.get_type_id(built.geoms)
            total += built.vertices
            holes += built.holes
            polygons += int((kinds == shapely.GeometryType.POLYGON).sum())
            multis += int((kinds == shapely.GeometryType.MULTIPOLYGON).sum())
            del built, table
        pin_dbf_date(shp.with_suffix(".dbf"))
        write_zip(out_zip, [(Path(tmp) / name, name) for name in members])
    return TimezoneManifest(
        path=out_zip, features=zones, vertices=total, polygons=polygons,
        multipolygons=multis, invalid=int((layout.defect != g.NO_DEFECT).sum()), holes=holes,
        sha256=sha256_file(out_zip), size=out_zip.stat().st_size, tzids=tzids, members=members,
        params={"zones": zones, "vertices": vertices, "seed": seed},
    )


def pick_tzids(zones: int, rng: np.random.Generator) -> list[str]:
    """Unique, sorted tzids: the non-ASCII ones first, some ``Etc/GMT±N`` oceans, then land."""
    special = list(NON_ASCII_TZIDS.values())[: max(1, min(len(NON_ASCII_TZIDS), zones // 2))]
    n_ocean = min(len(OCEAN_TZIDS), max(1, round(zones * len(OCEAN_TZIDS) / 445)))
    ocean = list(np.array(OCEAN_TZIDS)[np.sort(rng.choice(len(OCEAN_TZIDS), n_ocean, False))])
    land = [t for t in LAND_TZIDS if t not in NON_ASCII_TZIDS]
    land = [land[i] for i in rng.permutation(len(land))]
    chosen = (special + ocean + land)[:zones]
    chosen += [f"Etc/Synthetic_{i:04d}" for i in range(zones - len(chosen))]
    return sorted(str(t) for t in chosen)


def _layout(zones: int, vertices: int, rng: np.random.Generator) -> g.Layout:
    """Boxes and vertex budgets: Zipf-like budgets, the biggest on the biggest cells."""
    cells = g.partition(zones, WORLD, rng)
    cells = cells[rng.permutation(zones)]  # tzids are sorted; sizes should not be
    w, h = g.widths(cells)
    weights = 1.0 / np.arange(1, zones + 1) ** 1.05
    budget = np.zeros(zones, dtype=np.int64)
    by_size = np.argsort(-(w * h) * rng.lognormal(0.0, 0.5, zones), kind="stable")
    budget[by_size] = np.maximum(np.rint(vertices * weights / weights.sum()), 40)
    big = np.zeros(zones, dtype=bool)
    big[by_size[: max(1, zones // 20)]] = True
    multi = big | (rng.random(zones) < 0.4)
    if zones >= 2:  # always a mix of Polygon and MultiPolygon
        multi[by_size[0]], multi[by_size[-1]] = True, False
    holes_n = np.where(rng.random(zones) < 0.35, rng.integers(1, 5, zones), 0)
    if zones >= 3 and not holes_n.any():
        holes_n[by_size[1]] = 2
    share = np.where(multi, rng.uniform(0.4, 0.8, zones), 1.0)
    main_n = np.minimum(np.rint(budget * share * 0.96), _MAX_RING).astype(np.int64)
    n_isl = np.where(multi, np.clip(np.rint(budget / 2500 * rng.uniform(0.3, 1.5, zones)),
                                    1, 800), 0).astype(np.int64)
    main, strip = g.split_strip(cells, rng.uniform(0.15, 0.3, zones))
    main = np.where(multi[:, None], main, cells)
    islands = g.subdivide(strip, n_isl, rng)
    island_left = np.maximum(budget - main_n - np.rint(main_n * 0.04).astype(np.int64), 0)
    isl_w = rng.lognormal(0.0, 1.0, len(islands.parent))
    isl_share = isl_w / np.bincount(islands.parent, isl_w, zones)[islands.parent]
    hole_grid = g.subdivide(g.centre_box(g.inner(main), 0.5), holes_n, rng)
    defect = np.zeros(zones, dtype=np.int8)
    n_bad = min(zones, max(2, round(0.01 * zones)))
    chosen = np.sort(rng.choice(zones, n_bad, replace=False))
    defect[chosen] = np.where(np.arange(n_bad) % 2 == 0, g.BOWTIE, g.SPIKE)
    return g.Layout(
        main=main, main_n=main_n,
        island_box=islands.boxes, island_owner=islands.parent,
        island_n=np.maximum(np.rint(island_left[islands.parent] * isl_share), 8).astype(np.int64),
        hole_box=hole_grid.boxes, hole_owner=hole_grid.parent,
        hole_n=np.maximum(np.rint(main_n[hole_grid.parent] * 0.04 / np.maximum(
            holes_n[hole_grid.parent], 1)), 8).astype(np.int64),
        defect=defect, single=~multi,
    )
