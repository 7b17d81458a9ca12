"""The known places' second release, and what its edits are checked by.

Release two of the generated world (:mod:`devtools.testdata.places`) has known edits:
Llívia handed to France, Campione d'Italia (Italy's exclave in Switzerland) drawn, and
the canton of Zürich spelt Zurich. A change report must be exactly those edits; their
areas are measured by PostGIS on the carved boxes (:func:`km2`), never by the code under
test.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from devtools.testdata.places import (
    CARVES,
    Area,
    Carve,
    PlacesFiles,
    load_places,
    make_places_files,
)

CAMPIONE = Carve((8.955, 45.955, 8.985, 45.985),
                 Area("Europe/Rome", "ITA", "Italy", "Lombardia", "Campione d'Italia"))
LIVIA = CARVES[3]


@dataclass(frozen=True)
class Loaded:
    """The known places' files, loaded into the database at ``url``."""

    files: PlacesFiles
    url: str


def release_two(out: Path, *, deep: bool = False) -> PlacesFiles:
    """The second release's files, written under ``out`` (``deep``: GADM levels 3 to 5 filled, as
    the pipeline needs to load the file)."""
    places = [replace(p, admin1="Zurich") if p.admin1 == "Zürich" else p
              for p in load_places()]
    carves = [c for c in CARVES if c is not LIVIA] + [CAMPIONE]
    return make_places_files(out, places, carves, deep=deep)


def km2(conn: psycopg.Connection, *box: float) -> float:
    """The area of a lon/lat box, in km², on the spheroid."""
    row = conn.execute("SELECT ST_Area(ST_MakeEnvelope(%s, %s, %s, %s, 4326)::geography) / 1e6",
                       box).fetchone()
    assert row is not None
    return float(row[0])


def gid_of(conn: psycopg.Connection, table: str, level: int, name: str) -> str:
    """The GADM key of the area called ``name`` at ``level`` in ``table``."""
    column = "country" if level == 0 else f"name_{level}"
    row = conn.execute(f"SELECT gid_{level} FROM {table} WHERE {column} = %s", (name,)
                       ).fetchone()
    assert row is not None, (table, name)
    return str(row[0])
