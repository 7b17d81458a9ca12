"""GADM-like ``gadm_410-levels.zip``: a GeoPackage with nested layers ADM_0 … ADM_5.

Real GADM cannot be redistributed and is 1.4 GB, so tests and benchmarks use this stand-in.
It keeps what matters to a loader: the layer names and GADM 4.1's string fields exactly as
published (names and order; not every level has every attribute), real nesting
(every child lies inside its parent), per-level feature proportions and vertex densities,
multi-part features, holes, names in many scripts, NULLs, and a few invalid geometries
(bow-ties and spikes) that must be repaired with ``make_valid``.

Only one batch of geometries is alive at a time; everything else is small (boxes and names).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio.raw
import shapely

from devtools.testdata import _geom as g
from devtools.testdata._files import JsonManifest, pinned_gdal_date, sha256_file, write_zip
from devtools.testdata._names import COUNTRIES, FAMOUS_NAMES, SCRIPT_NAMES, SCRIPTS

ZIP_NAME = "gadm_410-levels.zip"
GPKG_NAME = "gadm_410-levels.gpkg"
LAYERS = tuple(f"ADM_{i}" for i in range(6))
REAL_COUNTS = (263, 3662, 47217, 144193, 153410, 51427)  # features per level in GADM 4.1
WORLD = (-180.0, -85.0, 180.0, 85.0)

_BASE_VERTICES = (2500, 700, 220, 110, 65, 40)  # median ring vertices per level
_P_MULTI = (0.35, 0.2, 0.1, 0.08, 0.06, 0.05)  # share of multi-part (island) features
_P_HOLE = (0.15, 0.12, 0.1, 0.08, 0.06, 0.05)  # share of features with an enclave
_DEPTH_SHARE = (1.0, 0.92, 0.8, 0.5, 0.2, 0.08)  # share of countries reaching level k
_INVALID_SHARE = 0.002
#: Each level's own fields as GADM 4.1 publishes them, in order (``NAME_k`` … ``ISO_1``);
#: the level's ``GID_k`` comes first and its ancestors' fields between.
PUBLISHED_OWN: dict[int, tuple[str, ...]] = {
    1: ("NAME", "VARNAME", "NL_NAME", "TYPE", "ENGTYPE", "CC", "HASC", "ISO"),
    2: ("NAME", "VARNAME", "NL_NAME", "TYPE", "ENGTYPE", "CC", "HASC"),
    3: ("NAME", "VARNAME", "NL_NAME", "TYPE", "ENGTYPE", "CC", "HASC"),
    4: ("NAME", "VARNAME", "TYPE", "ENGTYPE", "CC"),
    5: ("NAME", "TYPE", "ENGTYPE", "CC"),
}
#: Levels that repeat every ancestor's ``NL_NAME_j``.
ANCESTOR_NL_NAME = (2, 3)
_BATCH_VERTICES = 400_000
_BATCH_FEATURES = 10_000


@dataclass
class GadmManifest(JsonManifest):
    """What was written, so tests and benchmarks can check a loader's counts."""

    _tuples = ("layers",)

    path: Path
    layers: tuple[str, ...]
    features: dict[str, int]
    vertices: dict[str, int]
    invalid: dict[str, int]
    multipart: dict[str, int]
    holes: dict[str, int]
    sha256: str
    size: int
    member: str = GPKG_NAME
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def total_features(self) -> int:
        """Features over all layers."""
        return sum(self.features.values())



def level_counts(features: int) -> tuple[int, ...]:
    """Split ``features`` over six levels like GADM 4.1, each level at least 1.

    ADM_0 gets at least ``min(8, features // 40)`` countries, a little more than its
    real share at small sizes, so that small files still hold several countries (and ADM_5
    can exist under some of them only).
    """
    total = sum(REAL_COUNTS)
    n0 = max(round(REAL_COUNTS[0] * features / total), min(8, max(1, features // 40)), 1)
    rest = max(features - n0, 5)
    weights = np.array(REAL_COUNTS[1:], dtype=np.float64)
    quota = rest * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    short = rest - int(counts.sum())
    counts[np.argsort(-(quota - counts), kind="stable")[:short]] += 1
    return (n0, *(max(1, int(c)) for c in counts))


@dataclass
class _Level:
    """Skeleton of one level: hierarchy and boxes, no coordinates yet."""

    parent: g.I64
    country: g.I64
    rank: g.I64  # 1-based position within the parent, as in GID ``FRA.1.2_1``
    layout: g.Layout


def make_gadm_levels_zip(out_zip: Path, *, features: int = 3000, seed: int = 1,
                         vertex_scale: float = 1.0) -> GadmManifest:
    """Write a GADM-4.1-like ``gadm_410-levels.zip`` (one GeoPackage, layers ADM_0…ADM_5)."""
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    counts = level_counts(features)
    levels = _skeleton(counts, seed, vertex_scale, with_defects=features >= 100)
    stats: dict[str, dict[str, int]] = {k: {} for k in ("vertices", "multipart", "holes")}
    with tempfile.TemporaryDirectory(dir=out_zip.parent, prefix=".gadm-") as tmp:
        gpkg = Path(tmp) / GPKG_NAME
        names = _Names(seed)
        with pinned_gdal_date():
            for k, level in enumerate(levels):
                attrs = names.level(k, level)
                _write_level(gpkg, k, level, attrs, seed, stats)
        write_zip(out_zip, [(gpkg, GPKG_NAME)])
    return GadmManifest(
        path=out_zip, layers=LAYERS,
        features={LAYERS[k]: len(lv.layout) for k, lv in enumerate(levels)},
        vertices=stats["vertices"],
        invalid={LAYERS[k]: int((lv.layout.defect != g.NO_DEFECT).sum())
                 for k, lv in enumerate(levels)},
        multipart=stats["multipart"], holes=stats["holes"],
        sha256=sha256_file(out_zip), size=out_zip.stat().st_size,
        params={"features": features, "seed": seed, "vertex_scale": vertex_scale},
    )


def _write_level(gpkg: Path, k: int, level: _Level, attrs: pa.Table, seed: int,
                 stats: dict[str, dict[str, int]]) -> None:
    """Build and append one layer batch by batch; only one batch of geometry is alive."""
    layer = LAYERS[k]
    for key in stats:
        stats[key][layer] = 0
    bounds = g.batches(level.layout.vertex_budget(), _BATCH_VERTICES, _BATCH_FEATURES)
    for b, (start, stop) in enumerate(bounds):
        built = g.build(level.layout.slice(start, stop), np.random.default_rng([seed, 1, k, b]))
        wkb = pa.array(shapely.to_wkb(built.geoms), type=pa.binary())
        table = attrs.slice(start, stop - start).append_column("geom", wkb)
        pyogrio.raw.write_arrow(table, str(gpkg), layer=layer, driver="GPKG",
                                geometry_name="geom", geometry_type="MultiPolygon",
                                crs="EPSG:4326", append=b > 0)
        stats["vertices"][layer] += built.vertices
        stats["multipart"][layer] += built.multipart
        stats["holes"][layer] += built.holes




def _skeleton(counts: tuple[int, ...], seed: int, vertex_scale: float,
              with_defects: bool) -> list[_Level]:
    """Hierarchy and boxes for all levels: countries tile the world, children tile parents."""
    rng = np.random.default_rng([seed, 0])
    n0 = counts[0]
    cells = g.partition(int(np.ceil(n0 * 1.5)) + 1, WORLD, rng)  # the rest stays ocean
    cells = cells[np.sort(rng.choice(len(cells), n0, replace=False))]
    country = np.arange(n0, dtype=np.int64)
    parent = np.full(n0, -1, dtype=np.int64)
    rank = np.arange(1, n0 + 1, dtype=np.int64)
    depth = _country_depths(n0, rng)
    levels: list[_Level] = []
    for k in range(6):
        n = len(cells)
        multi = rng.random(n) < _P_MULTI[k]
        main, strip = g.split_strip(cells, rng.uniform(0.12, 0.22, n))
        main = np.where(multi[:, None], main, cells)
        islands = g.subdivide(strip[multi], np.where(multi, rng.integers(1, 4, n), 0)[multi], rng)
        island_owner = np.flatnonzero(multi)[islands.parent]
        nxt = counts[k + 1] if k < 5 else 0
        children = _distribute(nxt, depth[country] > k, depth[country], rng)
        grid = g.subdivide(g.inner(main), children, rng)
        hole_box, hole_owner = _holes(main, children, grid, rng.random(n) < _P_HOLE[k])
        main_n = _vertices(_BASE_VERTICES[k] * vertex_scale, n, rng)
        layout = g.Layout(
            main=main, main_n=main_n,
            island_box=islands.boxes, island_owner=island_owner,
            island_n=np.maximum(main_n[island_owner] // 8, 8),
            hole_box=hole_box, hole_owner=hole_owner,
            hole_n=np.maximum(main_n[hole_owner] // 10, 8),
            defect=_defects(n, k, with_defects, rng), single=np.zeros(n, dtype=bool),
        )
        levels.append(_Level(parent, country, rank, layout))
        cells, parent, rank = grid.boxes, grid.parent, grid.rank + 1
        country = country[parent]
    return levels


def _country_depths(n0: int, rng: np.random.Generator) -> g.I64:
    """Deepest level per country: most reach ADM_2, few ADM_4, a handful ADM_5."""
    order = rng.permutation(n0)
    depth = np.zeros(n0, dtype=np.int64)
    for k, share in enumerate(_DEPTH_SHARE):
        depth[order[: max(1, round(share * n0))]] = k
    return depth


def _distribute(n: int, eligible: g.Bool, depth: g.I64, rng: np.random.Generator) -> g.I64:
    """Children per parent: every eligible parent gets one, the rest go by random weight.

    With fewer children than eligible parents, parents of deeper countries win, so that
    the deeper levels still have parents to hang from.
    """
    out = np.zeros(len(eligible), dtype=np.int64)
    if n == 0:
        return out
    idx = np.flatnonzero(eligible)
    if len(idx) == 0:
        idx = np.flatnonzero(depth == depth.max())
    if n < len(idx):
        key = -depth[idx] + rng.random(len(idx)) * 0.5
        out[idx[np.argsort(key, kind="stable")[:n]]] = 1
        return out
    weights = rng.lognormal(0.0, 0.8, len(idx))
    out[idx] = 1 + rng.multinomial(n - len(idx), weights / weights.sum())
    return out


def _holes(main: g.F64, children: g.I64, grid: g.Grid,
           want: g.Bool) -> tuple[g.F64, g.I64]:
    """Enclave boxes: centred in childless features, or in a free grid cell of a parent."""
    leaf = want & (children == 0)
    spare = want & (children > 0) & grid.has_spare
    owner = np.concatenate([np.flatnonzero(leaf), np.flatnonzero(spare)])
    boxes = np.concatenate([g.centre_box(g.inner(main[leaf]), 0.3), grid.spare[spare]])
    order = np.argsort(owner, kind="stable")
    return boxes[order], owner[order]


def _vertices(median: float, n: int, rng: np.random.Generator) -> g.I64:
    """Ring sizes around ``median`` with a long tail, like real coastlines."""
    return np.maximum(np.rint(median * rng.lognormal(0.0, 0.5, n)), 8).astype(np.int64)


def _defects(n: int, k: int, with_defects: bool, rng: np.random.Generator) -> g.I8:
    """About 0.2 % bow-ties/spikes; at least one per level >= 1 when asked for."""
    count = round(_INVALID_SHARE * n)
    if with_defects and k >= 1:
        count = max(count, 1)
    out = np.zeros(n, dtype=np.int8)
    chosen = np.sort(rng.choice(n, min(count, n), replace=False))
    out[chosen] = np.where(np.arange(len(chosen)) % 2 == 0, g.BOWTIE, g.SPIKE)
    return out


# --- attributes -------------------------------------------------------------------------

_NULL = pa.scalar(None, pa.string())
_LETTERS = pa.array([a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"])


def _join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    """Element-wise string concatenation (NULL if any part is NULL)."""
    return pc.binary_join_element_wise(*parts, sep)


class _Names:
    """GADM 4.1 string fields, built level by level with pyarrow compute (no per-row code)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pre = pa.array([p for s in SCRIPTS.values() for p in s.prefixes])
        self.suf = pa.array([p for s in SCRIPTS.values() for p in s.suffixes])
        self.pre_n = np.array([len(s.prefixes) for s in SCRIPTS.values()])
        self.suf_n = np.array([len(s.suffixes) for s in SCRIPTS.values()])
        self.native = np.array([s.native for s in SCRIPTS.values()])
        self.latin = np.flatnonzero(~self.native)
        self.gid: list[pa.Array] = []
        self.stem: list[pa.Array] = []
        self.name: list[pa.Array] = []
        self.nl_name: list[pa.Array] = []
        self.hasc: list[pa.Array] = []
        self.parents: list[g.I64] = []
        self.iso2 = pa.array([])
        self.script = np.zeros(0, dtype=np.int64)

    def compose(self, script: g.I64, rng: np.random.Generator) -> pa.Array:
        """A name per row from its script's prefix and suffix fragments."""
        pre_off = np.cumsum(self.pre_n) - self.pre_n
        suf_off = np.cumsum(self.suf_n) - self.suf_n
        i = pre_off[script] + (rng.random(len(script)) * self.pre_n[script]).astype(np.int64)
        j = suf_off[script] + (rng.random(len(script)) * self.suf_n[script]).astype(np.int64)
        return _join(self.pre.take(pa.array(i)), self.suf.take(pa.array(j)))

    def level(self, k: int, level: _Level) -> pa.Table:
        """The attribute table of level ``k`` (rows in feature order)."""
        rng = np.random.default_rng([self.seed, 2, k])
        n = len(level.country)
        if k == 0:
            return self._countries(n, rng)
        self.parents.append(level.parent)
        own_script = self.script[level.country]
        script = np.where(rng.random(n) < 0.6, own_script,
                          rng.integers(0, len(SCRIPT_NAMES), n))
        native = self.compose(script, rng)
        latin = self.compose(self.latin[rng.integers(0, len(self.latin), n)], rng)
        is_native = self.native[script]
        name = pc.if_else(pa.array(~is_native | (rng.random(n) < 0.5)), native, latin)
        famous = min(n, len(FAMOUS_NAMES))
        name = pa.concat_arrays([pa.array(FAMOUS_NAMES[:famous]), name[famous:]])
        nl_name = pc.if_else(pa.array(is_native & (rng.random(n) < 0.6)), native, _NULL)
        alt = self.compose(self.latin[rng.integers(0, len(self.latin), n)], rng)
        alt2 = _join(alt, self.compose(self.latin[rng.integers(0, len(self.latin), n)], rng),
                     sep="|")  # GADM separates alternative names with '|'
        varname = pc.if_else(pa.array(rng.random(n) < 0.25),
                             pc.if_else(pa.array(rng.random(n) < 0.3), alt2, alt), _NULL)
        parent_stem = self.stem[k - 1].take(pa.array(level.parent))
        stem = _join(parent_stem, pc.cast(pa.array(level.rank), pa.string()), sep=".")
        gid = _join(stem, "1", sep="_")
        letters = _LETTERS.take(pa.array((level.rank - 1) % len(_LETTERS)))
        if k == 1:
            hasc = _join(self.iso2.take(pa.array(level.country)), letters, sep=".")
        elif k == 2:
            hasc = _join(self.hasc[1].take(pa.array(level.parent)), letters, sep=".")
        else:
            hasc = pa.nulls(n, pa.string())
        hasc = pc.if_else(pa.array(rng.random(n) < 0.85), hasc, pa.scalar("NA"))
        cc = pc.utf8_lpad(pc.cast(pa.array(level.rank), pa.string()), 2, "0")
        cc = pc.if_else(pa.array(rng.random(n) < (0.8 if k < 3 else 0.3)), cc, pa.scalar("NA"))
        local_type = pa.array([SCRIPTS[s].types[k - 1][0] for s in SCRIPT_NAMES])
        eng_type = pa.array([SCRIPTS[s].types[k - 1][1] for s in SCRIPT_NAMES])
        types = pa.array(own_script)
        own = {"NAME": name, "VARNAME": varname, "NL_NAME": nl_name,
               "TYPE": local_type.take(types), "ENGTYPE": eng_type.take(types), "CC": cc,
               "HASC": hasc}
        if k == 1:
            iso = _join(self.iso2.take(pa.array(level.country)), letters, sep="-")
            own["ISO"] = pc.if_else(pa.array(rng.random(n) < 0.7), iso, pa.scalar("NA"))
        cols: dict[str, pa.Array] = {f"GID_{k}": gid, **self._ancestors(k, level)}
        cols |= {f"{stem}_{k}": own[stem] for stem in PUBLISHED_OWN[k]}
        self.gid.append(gid)
        self.stem.append(stem)
        self.name.append(name)
        self.nl_name.append(nl_name)
        self.hasc.append(hasc)
        return pa.table(cols)

    def _countries(self, n: int, rng: np.random.Generator) -> pa.Table:
        """ADM_0: real ISO3 codes and names first, made-up ``Qxx`` ones after."""
        known = COUNTRIES[:n]
        extra = n - len(known)
        codes = [c[0] for c in known] + [f"Q{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"][:extra]
        self.script = np.concatenate([
            np.array([SCRIPT_NAMES.index(c[3]) for c in known], dtype=np.int64),
            rng.integers(0, len(SCRIPT_NAMES), extra)])
        made_up = self.compose(self.latin[rng.integers(0, len(self.latin), extra)], rng)
        names = pa.concat_arrays([pa.array([c[1] for c in known], pa.string()), made_up])
        gid0 = pa.array(codes, pa.string())
        self.iso2 = pa.array([c[2] for c in known] + [c[1:] for c in codes[len(known):]],
                             pa.string())
        self.country_name = names
        self.gid.append(gid0)
        self.stem.append(gid0)
        self.name.append(names)
        self.nl_name.append(pa.nulls(n, pa.string()))
        self.hasc.append(self.iso2)
        self.parents.append(np.full(n, -1, dtype=np.int64))
        return pa.table({"GID_0": gid0, "COUNTRY": names})

    def _ancestors(self, k: int, level: _Level) -> dict[str, pa.Array]:
        """``GID_0, COUNTRY`` then ``GID_j, NAME_j`` of every ancestor j < k, and its
        ``NL_NAME_j`` on the levels that repeat it (2 and 3)."""
        country = pa.array(level.country)
        cols: dict[str, pa.Array] = {"GID_0": self.gid[0].take(country),
                                     "COUNTRY": self.country_name.take(country)}
        chain: dict[int, g.I64] = {}
        idx = level.parent
        for j in range(k - 1, 0, -1):
            chain[j] = idx
            idx = self.parents[j][idx]
        for j in range(1, k):
            take = pa.array(chain[j])
            cols[f"GID_{j}"] = self.gid[j].take(take)
            cols[f"NAME_{j}"] = self.name[j].take(take)
            if k in ANCESTOR_NL_NAME:
                cols[f"NL_NAME_{j}"] = self.nl_name[j].take(take)
        return cols
