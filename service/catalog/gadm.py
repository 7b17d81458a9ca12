"""GADM 4.1, the world's administrative areas, one GeoPackage layer per level."""

from __future__ import annotations

from service.catalog.model import Dataset, Field, Layer, Source

LEVELS = range(6)
_OWN = ("GID", "NAME", "VARNAME", "NL_NAME", "TYPE", "ENGTYPE", "CC", "HASC")


def level_fields(level: int) -> tuple[Field, ...]:
    """The fields GADM publishes at ``level``: its ancestors' keys and names, then its own."""
    names = ["GID_0", "COUNTRY"]
    for ancestor in range(1, level):
        names += [f"GID_{ancestor}", f"NAME_{ancestor}"]
    if level > 0:
        names += [f"{stem}_{level}" for stem in _OWN]
    if level == 1:
        names.append("ISO_1")
    return tuple(Field(name) for name in names)


def level_layer(level: int) -> Layer:
    """ADM_<level> → gadm.adm_<level>, with the GID keys that join levels indexed."""
    return Layer(
        name=f"ADM_{level}",
        table=f"gadm.adm_{level}",
        fields=level_fields(level),
        indexes=tuple(f"gid_{k}" for k in range(level + 1)),
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
)
