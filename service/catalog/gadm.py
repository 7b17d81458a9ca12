"""GADM 4.1, the world's administrative areas, one GeoPackage layer per level.

Each level's fields, in the order ``gadm_410-levels.gpkg`` has them: the level's own
``GID_k`` first, then ``GID_0, COUNTRY``, the ancestors' keys and names, then the
level's own attributes. GADM does not publish the same attributes on every level:
``VARNAME`` stops at level 4, ``NL_NAME`` and ``HASC`` at level 3, and only levels 2
and 3 repeat their ancestors' ``NL_NAME``.
"""

from __future__ import annotations

from service.catalog.countries import CODES
from service.catalog.model import Dataset, Field, Layer, Source

LEVELS = range(6)
#: The level's own attributes after ``NAME_k``, as GADM 4.1 publishes them.
_OWN: dict[int, tuple[str, ...]] = {
    1: ("VARNAME", "NL_NAME", "TYPE", "ENGTYPE", "CC", "HASC", "ISO"),
    2: ("VARNAME", "NL_NAME", "TYPE", "ENGTYPE", "CC", "HASC"),
    3: ("VARNAME", "NL_NAME", "TYPE", "ENGTYPE", "CC", "HASC"),
    4: ("VARNAME", "TYPE", "ENGTYPE", "CC"),
    5: ("TYPE", "ENGTYPE", "CC"),
}
#: Levels that repeat each ancestor's ``NL_NAME_j`` after its ``NAME_j``.
_ANCESTOR_NL_NAME = (2, 3)


def level_fields(level: int) -> tuple[Field, ...]:
    """The fields GADM publishes at ``level``, in its order; every ``GID_j`` and
    ``COUNTRY`` are keys, since the levels join on them."""
    fields = [Field(f"GID_{level}", key=True)] if level else []
    fields += [Field("GID_0", key=True), Field("COUNTRY", key=True)]
    for ancestor in range(1, level):
        fields += [Field(f"GID_{ancestor}", key=True), Field(f"NAME_{ancestor}")]
        if level in _ANCESTOR_NL_NAME:
            fields.append(Field(f"NL_NAME_{ancestor}"))
    if level:
        fields += [Field(f"NAME_{level}"),
                   *(Field(f"{stem}_{level}") for stem in _OWN[level])]
    return tuple(fields)


def join_keys(level: int) -> tuple[str, ...]:
    """The B-tree indexed keys of ``level``: ``gid_0`` (every level filters by country), its
    parent's key (a level joins the one above) and its own key, last (the one that names a
    feature, see :mod:`service.changes.catalog`).

    Not every ancestor's: a join to a grandparent goes through the parent, and the other
    ancestors' indexes cost 0.3 of 0.8 s of B-tree builds on the dense GADM file.
    """
    return tuple(dict.fromkeys(("gid_0", f"gid_{max(level - 1, 0)}", f"gid_{level}")))


def level_layer(level: int) -> Layer:
    """ADM_<level> → gadm.adm_<level>, with the GID keys that join levels indexed."""
    return Layer(
        name=f"ADM_{level}",
        table=f"gadm.adm_{level}",
        fields=level_fields(level),
        indexes=join_keys(level),
        feature_key=f"GID_{level}",
        level=level,
    )


GADM = Dataset(
    name="gadm",
    title="GADM 4.1 administrative areas, levels 0-5",
    source=Source(
        url="https://geodata.ucdavis.edu/gadm/gadm4.1/gadm_410-levels.zip",
        member="*.gpkg",
    ),
    layers=tuple(level_layer(level) for level in LEVELS),
    licence="GADM licence: free for non-commercial use; no redistribution",
    homepage="https://gadm.org/",
    # One GeoPackage per country, not zipped; its layers ADM_ADM_0 … ADM_ADM_k stop at the
    # country's deepest level.
    parts=Source(url="https://geodata.ucdavis.edu/gadm/gadm4.1/gpkg/gadm41_{part}.gpkg",
                 member="*.gpkg", archive=None, layer="ADM_{name}"),
    part_codes=CODES,
)
