"""Which key and name fields identify and name an area in each catalog layer."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from service.catalog.model import SOURCE_FID, Dataset, Layer
from service.changes.model import Compared
from service.load.names import STAGING

#: Fields whose change counts as a rename (GADM's names; a time zone has only its id).
_NAME_STEMS = ("name", "varname", "nl_name")


def compared_layers(dataset: Dataset, staged: Mapping[str, str],
                    gone: Collection[str] = ()) -> list[Compared]:
    """One :class:`Compared` per layer in ``staged`` (live table -> staging table), and
    one without a staging table per live table in ``gone`` (the live version has it, the
    new one does not).

    The key is the layer's own key unless that is the source's feature id, which a new
    release renumbers: then it is the layer's most specific indexed key (GADM's ``gid_k``).
    """
    out = []
    for layer in dataset.layers:
        staging: str | None = staged.get(layer.table)
        if staging is not None:
            staging = staging if "." in staging else f"{STAGING}.{staging}"
        elif layer.table not in gone:
            continue
        out.append(Compared(layer.table, staging, key_of(layer), _names(layer)))
    return out


def key_of(layer: Layer) -> str:
    """The column a layer's changes are keyed by (GADM: ``gid_k``, not the fid)."""
    if layer.key != SOURCE_FID or not layer.indexes:
        return layer.key
    return layer.indexes[-1]


def _names(layer: Layer) -> tuple[str, ...]:
    """GADM level k: ``name_k``, ``varname_k``, ``nl_name_k`` (``country`` at level 0)."""
    level = key_of(layer).removeprefix("gid_")
    wanted = {"country"} if level == "0" else {f"{stem}_{level}" for stem in _NAME_STEMS}
    return tuple(f.column for f in layer.fields if f.column in wanted)
