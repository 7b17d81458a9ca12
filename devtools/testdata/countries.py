"""GADM's per-country GeoPackages, ``gadm41_{ISO3}.gpkg``, cut from a generated world file.

Shaped like upstream's: not zipped, one layer per level named ``ADM_ADM_0`` …
``ADM_ADM_k``, k the country's deepest level, with the world file's fields. ``deepest``
cuts a country short, as GADM publishes many countries only to level 1 or 2.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import pyogrio.raw

from devtools.testdata.gadm import GPKG_NAME, LAYERS
from devtools.testdata.mirror import mirror_path

COUNTRY_URL = "https://geodata.ucdavis.edu/gadm/gadm4.1/gpkg/gadm41_{code}.gpkg"


def country_url(code: str) -> str:
    return COUNTRY_URL.format(code=code)


def make_country_gpkgs(levels_zip: Path, root: Path, codes: list[str],
                       deepest: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
    """Write each country's file under ``root`` at upstream's path; returns, per country,
    the features of each layer written (by catalog layer name, ``ADM_k``)."""
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(levels_zip) as zf:
            world = Path(zf.extract(GPKG_NAME, tmp))
        for code in codes:
            out = root / mirror_path(country_url(code))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.unlink(missing_ok=True)
            counts[code] = _write_country(world, out, code, (deepest or {}).get(code, 5))
    return counts


def _write_country(world: Path, out: Path, code: str, deepest: int) -> dict[str, int]:
    written: dict[str, int] = {}
    for level, layer in enumerate(LAYERS[:deepest + 1]):
        meta, table = pyogrio.raw.read_arrow(world, layer=layer, where=f"GID_0 = '{code}'")
        if table.num_rows == 0:
            break
        pyogrio.raw.write_arrow(table, str(out), layer=f"ADM_ADM_{level}", driver="GPKG",
                                geometry_name=meta["geometry_name"] or "geom",
                                geometry_type="MultiPolygon", crs="EPSG:4326",
                                append=False)
        written[layer] = table.num_rows
    return written
