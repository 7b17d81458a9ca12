"""Upstream-shaped files drawn around known places, so a lookup can be checked against facts.

``tests/data/known_places.json`` lists places with their IANA zone and country (public
facts). This module draws a coarse world in which each of them lies in its right zone,
country and first-level division, and writes it the way upstream publishes it:

* ``timezones-with-oceans.shapefile.zip`` holding ``combined-shapefile-with-oceans``
  (one field, ``tzid``), land zones plus the ``Etc/GMT±N`` ocean zones that cover the
  rest of the globe, as timezone-boundary-builder's "with oceans" release does;
* ``gadm_410-levels.zip`` holding a GeoPackage with layers ``ADM_0`` … ``ADM_5`` and
  exactly GADM 4.1's fields, in order (``ADM_3`` … ``ADM_5`` are empty here).

How the world is drawn: every ``city`` place is a seed; its area is its Voronoi cell,
kept within :data:`LAND_RADIUS` degrees of it (the rest is sea). The enclaves are
drawn on top (:data:`CARVES`, in order, so a counter-enclave cuts its enclave):
Büsingen (German, in Switzerland, zone ``Europe/Busingen``), Baarle-Hertog (Belgian,
in the Netherlands) with a Dutch counter-enclave inside it, Llívia (Spanish, in
France), the Navajo Nation (``America/Denver`` inside Arizona's ``America/Phoenix``)
with the Hopi Reservation (``America/Phoenix`` again) inside it. Kaliningrad, a seed of
its own, is Russia's exclave by construction: its land can't reach the rest of Russia.

All linework (cells, land edges, enclaves, the ocean zones' meridians) is noded once and
polygonized into faces, and every feature is a union of faces. So neighbours share their
border exactly, vertex for vertex: a point on a border is in both, as upstream's
coverages intend. Polygons are coarse; the topology is what matters.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio.raw
import shapely

from devtools.testdata._files import pin_dbf_date, pinned_gdal_date, write_zip

ROOT = Path(__file__).resolve().parents[2]
PLACES_JSON = ROOT / "tests" / "data" / "known_places.json"
TZ_ZIP = "timezones-with-oceans.shapefile.zip"
TZ_STEM = "combined-shapefile-with-oceans"
GADM_ZIP = "gadm_410-levels.zip"
GADM_GPKG = "gadm_410-levels.gpkg"
#: Degrees of land kept around each city: far enough that neighbours' land meets (shared
#: borders), near enough that the seas between continents stay sea.
LAND_RADIUS = 4.0
WORLD = (-180.0, -90.0, 180.0, 90.0)
#: Levels drawn; GADM's deeper levels are written as empty layers.
DRAWN_LEVELS = 3
#: GADM 4.1's fields per level, exactly as in ``gadm_410-levels.gpkg`` and in its order
#: (see shared/NOTES.md): ancestors' keys and names, and at levels 2 and 3 their NL_NAME.
GADM_FIELDS: tuple[tuple[str, ...], ...] = (
    ("GID_0", "COUNTRY"),
    ("GID_1", "GID_0", "COUNTRY", "NAME_1", "VARNAME_1", "NL_NAME_1", "TYPE_1", "ENGTYPE_1",
     "CC_1", "HASC_1", "ISO_1"),
    ("GID_2", "GID_0", "COUNTRY", "GID_1", "NAME_1", "NL_NAME_1", "NAME_2", "VARNAME_2",
     "NL_NAME_2", "TYPE_2", "ENGTYPE_2", "CC_2", "HASC_2"),
    ("GID_3", "GID_0", "COUNTRY", "GID_1", "NAME_1", "NL_NAME_1", "GID_2", "NAME_2",
     "NL_NAME_2", "NAME_3", "VARNAME_3", "NL_NAME_3", "TYPE_3", "ENGTYPE_3", "CC_3", "HASC_3"),
    ("GID_4", "GID_0", "COUNTRY", "GID_1", "NAME_1", "GID_2", "NAME_2", "GID_3", "NAME_3",
     "NAME_4", "VARNAME_4", "TYPE_4", "ENGTYPE_4", "CC_4"),
    ("GID_5", "GID_0", "COUNTRY", "GID_1", "NAME_1", "GID_2", "NAME_2", "GID_3", "NAME_3",
     "GID_4", "NAME_4", "NAME_5", "TYPE_5", "ENGTYPE_5", "CC_5"),
)


@dataclass(frozen=True)
class Place:
    """One known place, as ``known_places.json`` states it."""

    name: str
    lat: float
    lon: float
    tzid: str
    iso3: str | None
    country: str | None
    admin1: str | None
    kind: str  # city | enclave | sea
    note: str = ""


@dataclass(frozen=True)
class Area:
    """What a piece of land belongs to: its zone, country, division and second level."""

    tzid: str
    iso3: str
    country: str
    admin1: str
    admin2: str


@dataclass(frozen=True)
class Carve:
    """An enclave drawn over the cells: ``box`` (lon/lat) becomes ``area``.

    With ``within`` (iso3, admin1) only the part of the box inside that division is cut,
    as the Navajo Nation is cut from Arizona and not from New Mexico.
    """

    box: tuple[float, float, float, float]
    area: Area
    within: tuple[str, str] | None = None


_USA, _AZ = ("USA", "United States"), "Arizona"
CARVES: tuple[Carve, ...] = (
    Carve((8.665, 47.685, 8.715, 47.705),
          Area("Europe/Busingen", "DEU", "Germany", "Baden-Württemberg", "Büsingen am Hochrhein")),
    Carve((4.915, 51.430, 4.945, 51.445),
          Area("Europe/Brussels", "BEL", "Belgium", "Vlaanderen", "Baarle-Hertog")),
    Carve((4.920, 51.437, 4.927, 51.442),
          Area("Europe/Amsterdam", "NLD", "Netherlands", "Noord-Brabant", "Baarle-Nassau")),
    Carve((1.955, 42.450, 2.005, 42.480),
          Area("Europe/Madrid", "ESP", "Spain", "Cataluña", "Llívia")),
    Carve((-111.6, 35.3, -108.9, 37.1),
          Area("America/Denver", *_USA, _AZ, "Navajo Nation"), within=("USA", _AZ)),
    Carve((-110.9, 35.6, -110.2, 36.1),
          Area("America/Phoenix", *_USA, _AZ, "Hopi Reservation"), within=("USA", _AZ)),
)


def load_places(path: Path = PLACES_JSON) -> list[Place]:
    """The known places, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Place(**p) for p in data["places"]]


def ocean_tzid(lon: float) -> str:
    """timezone-boundary-builder's ocean zone at ``lon``: 15° wide, ``Etc/GMT+N`` west.

    The IANA ``Etc`` names invert the sign: ``Etc/GMT+3`` is three hours behind UTC.
    """
    offset = int(np.clip(np.floor((lon + 7.5) / 15.0), -12, 12))
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


@dataclass
class World:
    """The drawn world: features per timezone and per GADM level."""

    timezones: dict[str, shapely.Geometry]
    levels: list[dict[tuple[str, ...], shapely.Geometry]]  # key: (iso3, admin1, admin2)[:k+1]
    areas: dict[tuple[str, ...], Area]


def draw(places: list[Place], carves: Sequence[Carve] = CARVES) -> World:
    """Faces of the noded linework, each given an area (or sea), then dissolved.

    Geometries are normalized (GEOS's canonical ring order), so an area drawn again
    from the same faces has the same bytes: two versions differ only where they differ.
    """
    seeds = [p for p in places if p.kind == "city"]
    points = shapely.points([p.lon for p in seeds], [p.lat for p in seeds])
    world = shapely.box(*WORLD)
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points),
                                                   extend_to=world)), world)
    discs = shapely.intersection(shapely.buffer(points, LAND_RADIUS, quad_segs=16), world)
    boxes = [shapely.box(*c.box) for c in carves]
    meridians = [shapely.linestrings([[x, -90.0], [x, 90.0]])
                 for x in np.arange(-172.5, 180.0, 15.0)]
    lines = [*shapely.boundary(cells), *shapely.boundary(discs),
             *shapely.boundary(boxes), *meridians, shapely.boundary(world)]
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(
        shapely.union_all(lines))))
    owners = _owners(faces, seeds, points, discs, list(zip(carves, boxes)))
    return _dissolve(faces, owners)


def _owners(faces: np.ndarray, seeds: list[Place], points: np.ndarray, discs: np.ndarray,
            carves: list[tuple[Carve, shapely.Geometry]]) -> list[Area | str]:
    """Each face's area, or its ocean zone's tzid where it is sea."""
    reps = shapely.point_on_surface(faces)
    xy = shapely.get_coordinates(reps)
    seed_xy = shapely.get_coordinates(points)
    # A face lies in one Voronoi cell: the one of the seed nearest to any of its points.
    cell_of = np.argmin(((xy[:, None, :] - seed_xy[None, :, :]) ** 2).sum(axis=2), axis=1)
    land = shapely.contains(discs[cell_of], reps)
    inside = [shapely.contains(shape, reps) for _carve, shape in carves]
    owners: list[Area | str] = []
    for i in range(len(reps)):
        seed = seeds[cell_of[i]]
        owner: Area | str = (Area(seed.tzid, str(seed.iso3), str(seed.country), str(seed.admin1),
                                  seed.name) if land[i] else ocean_tzid(xy[i, 0]))
        for (carve, _shape), hit in zip(carves, inside):
            if hit[i] and _inside(owner, carve.within):
                owner = carve.area
        owners.append(owner)
    return owners


def _inside(owner: Area | str, within: tuple[str, str] | None) -> bool:
    if within is None:
        return True
    return isinstance(owner, Area) and (owner.iso3, owner.admin1) == within


def _dissolve(faces: np.ndarray, owners: list[Area | str]) -> World:
    """Union the faces of each zone and of each GADM area, level by level."""
    tz_groups: dict[str, list[int]] = {}
    level_groups: list[dict[tuple[str, ...], list[int]]] = [{} for _ in range(DRAWN_LEVELS)]
    areas: dict[tuple[str, ...], Area] = {}
    for i, owner in enumerate(owners):
        tz_groups.setdefault(owner if isinstance(owner, str) else owner.tzid, []).append(i)
        if isinstance(owner, Area):
            key = (owner.iso3, owner.admin1, owner.admin2)
            for k in range(DRAWN_LEVELS):
                level_groups[k].setdefault(key[:k + 1], []).append(i)
                areas.setdefault(key[:k + 1], owner)
    return World(
        timezones={t: shapely.normalize(shapely.union_all(faces[idx]))
                   for t, idx in sorted(tz_groups.items())},
        levels=[{key: shapely.normalize(shapely.union_all(faces[idx]))
                 for key, idx in sorted(groups.items())} for groups in level_groups],
        areas=areas)


# --- writing ------------------------------------------------------------------------------


def write_timezone_zip(world: World, out_zip: Path) -> Path:
    """``timezones-with-oceans.shapefile.zip`` with ``combined-shapefile-with-oceans``."""
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "tzid": pa.array(list(world.timezones), pa.string()),
        "geometry": pa.array(shapely.to_wkb(list(world.timezones.values())), pa.binary())})
    with tempfile.TemporaryDirectory(dir=out_zip.parent, prefix=".places-tz-") as tmp:
        shp = Path(tmp) / f"{TZ_STEM}.shp"
        pyogrio.raw.write_arrow(table, str(shp), layer=TZ_STEM, driver="ESRI Shapefile",
                                geometry_name="geometry", geometry_type="Polygon",
                                crs="EPSG:4326", encoding="UTF-8")
        pin_dbf_date(shp.with_suffix(".dbf"))
        members = [Path(tmp) / f"{TZ_STEM}.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg")]
        write_zip(out_zip, [(m, m.name) for m in members if m.exists()])
    return out_zip


def deepen(world: World) -> World:
    """The world with GADM levels 3 to 5 too, each level-2 area its own only descendant
    (same shape, same name): GADM's world file has no empty level, and a loader that
    refuses an empty layer can load this one."""
    levels = list(world.levels)
    areas = dict(world.areas)
    for _level in range(DRAWN_LEVELS, len(GADM_FIELDS)):
        levels.append({key + (key[-1],): geom for key, geom in levels[-1].items()})
        areas.update({key: areas[key[:DRAWN_LEVELS]] for key in levels[-1]})
    return World(world.timezones, levels, areas)


def gadm_attributes(world: World, k: int) -> dict[str, list[str | None]]:
    """GADM 4.1's fields of level ``k``, in order; GIDs ranked by name as GADM numbers them."""
    keys = list(world.levels[k]) if k < len(world.levels) else []
    gid = _gids(world)
    columns: dict[str, list[str | None]] = {}
    for field in GADM_FIELDS[k]:
        columns[field] = [_value(field, key, world, gid) for key in keys]
    return columns


def _gids(world: World) -> dict[tuple[str, ...], str]:
    """``USA``, ``USA.3_1``, ``USA.3.2_1``: each area's rank among its siblings, by name."""
    gid: dict[tuple[str, ...], str] = {}
    for k in range(len(world.levels)):
        for rank_key in sorted(world.levels[k]):
            if k == 0:
                gid[rank_key] = rank_key[0]
                continue
            siblings = sorted(key for key in world.levels[k] if key[:k] == rank_key[:k])
            stem = gid[rank_key[:k]].removesuffix("_1")
            gid[rank_key] = f"{stem}.{siblings.index(rank_key) + 1}_1"
    return gid


def _value(field: str, key: tuple[str, ...], world: World,
           gid: dict[tuple[str, ...], str]) -> str | None:
    stem, _, level = field.rpartition("_")
    if field == "COUNTRY":
        return world.areas[key].country
    if stem == "GID":
        return gid[key[:int(level) + 1]]
    if stem == "NAME":
        return key[int(level)]
    if stem == "VARNAME":
        return None
    if stem in ("TYPE", "ENGTYPE"):
        return ("State", "Municipality", "Ward", "Ward", "Ward")[int(level) - 1]
    return "NA"  # NL_NAME, CC, HASC, ISO_1: GADM writes the string NA when it has none


def write_gadm_zip(world: World, out_zip: Path) -> Path:
    """``gadm_410-levels.zip``: a GeoPackage with ``ADM_0`` … ``ADM_5``."""
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_zip.parent, prefix=".places-gadm-") as tmp:
        gpkg = Path(tmp) / GADM_GPKG
        with pinned_gdal_date():
            for k in range(len(GADM_FIELDS)):
                geoms = list(world.levels[k].values()) if k < len(world.levels) else []
                multi = [g if g.geom_type == "MultiPolygon" else shapely.multipolygons([g])
                         for g in geoms]
                table = pa.table({**{name: pa.array(values, pa.string()) for name, values
                                     in gadm_attributes(world, k).items()},
                                  "geom": pa.array(shapely.to_wkb(multi), pa.binary())})
                pyogrio.raw.write_arrow(table, str(gpkg), layer=f"ADM_{k}", driver="GPKG",
                                        geometry_name="geom", geometry_type="MultiPolygon",
                                        crs="EPSG:4326", append=k > 0)
        write_zip(out_zip, [(gpkg, GADM_GPKG)])
    return out_zip


@dataclass(frozen=True)
class PlacesFiles:
    """Where :func:`make_places_files` wrote the two files, and the world they hold."""

    timezone_zip: Path
    gadm_zip: Path
    world: World


def make_places_files(out_dir: Path, places: list[Place] | None = None,
                      carves: Sequence[Carve] = CARVES, *, deep: bool = False) -> PlacesFiles:
    """Draw the world around the known places and write both upstream-shaped files.

    Other ``places`` or ``carves`` make another release of the same world (a renamed
    division, an enclave more or less), for comparing versions. ``deep`` fills GADM
    levels 3 to 5 (:func:`deepen`), as geoload's pipeline needs to load the file.
    """
    world = draw(places if places is not None else load_places(), carves)
    world = deepen(world) if deep else world
    return PlacesFiles(write_timezone_zip(world, Path(out_dir) / TZ_ZIP),
                       write_gadm_zip(world, Path(out_dir) / GADM_ZIP), world)
