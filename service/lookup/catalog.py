"""Which columns of a catalog dataset a lookup table carries, for the publish to call.

The publish knows each layer's staging table; these turn that into :class:`SourceTable`
records. Wiring is two calls inside the swap transaction::

    sources = lookup.gadm_sources(ds, {layer.table: row["staging_table"] ...})
    lookup.build(conn, sources, staging_lookup, dataset=ds.name)
    # then swap staging_lookup in as lookup_table(ds) with the data tables
"""

from __future__ import annotations

from collections.abc import Mapping

from service.catalog.model import Dataset
from service.load.names import STAGING
from service.lookup.model import SourceTable


def lookup_table(dataset: Dataset) -> str:
    """The live name of a dataset's lookup table: ``gadm.gadm_lookup``.

    Named after the dataset, not the schema, so several datasets in one schema (time
    zone variants such as ``timezone.timezones_land``) get one each.
    """
    return f"{dataset.schemas[0]}.{dataset.name}_lookup"


def gadm_sources(dataset: Dataset, staged: Mapping[str, str]) -> list[SourceTable]:
    """One source per GADM level: key ``gid_k``, name ``name_k`` (``country`` at level 0).

    ``staged`` maps each layer's live table (``gadm.adm_2``) to the staging table to read
    (``gadm__adm_2__l17``, in the staging schema, or qualified).
    """
    out = []
    for level, layer in enumerate(dataset.layers):
        if layer.table not in staged:
            continue
        out.append(SourceTable(_qualified(staged[layer.table]), layer.table, level,
                               f"gid_{level}", "country" if level == 0 else f"name_{level}",
                               name_label=f"name_{level}"))
    return out


def timezone_sources(dataset: Dataset, staged: Mapping[str, str]) -> list[SourceTable]:
    """Each layer's key (``tzid``), no name: a time zone's id is its name."""
    return [SourceTable(_qualified(staged[layer.table]), layer.table, 0, layer.key)
            for layer in dataset.layers if layer.table in staged]


def _qualified(table: str) -> str:
    return table if "." in table else f"{STAGING}.{table}"
