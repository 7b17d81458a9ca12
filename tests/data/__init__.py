"""Published facts that code is checked against, written down by hand as data.

Never derive these from the code under test: a catalog and a generator that share a
wrong assumption pass every test built from either (issue 11).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

GADM41_FIELDS = Path(__file__).with_name("gadm41_fields.json")


@cache
def _gadm41() -> dict:
    return json.loads(GADM41_FIELDS.read_text(encoding="utf-8"))


def gadm41_fields() -> dict[str, list[str]]:
    """GADM 4.1's fields per layer of ``gadm_410-levels.gpkg``, in the file's order."""
    return {layer: list(names) for layer, names in _gadm41()["layers"].items()}


def gadm41_keys() -> dict[str, list[str]]:
    """The fields of each layer a load can't do without (every ``GID_j``, ``COUNTRY``)."""
    return {layer: list(names) for layer, names in _gadm41()["keys"].items()
            if not layer.startswith("_")}
