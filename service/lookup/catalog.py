"""Which columns of a catalog dataset a lookup table carries, for the publish to call.

The publish knows each layer's staging table; these turn that into :class:`SourceTable`
records. Wiring is two calls inside the swap transaction::

    sources = lookup.gadm_sources(ds, {layer.table: row["staging_table"] ...})
    lookup.build(conn, sources, staging_lookup, dataset=ds.name)
    # then swap staging_lookup in as lookup_table(ds) with the data tables
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

from service.catalog.model import Dataset, Layer
from service.load import names
from service.load.names import STAGING
from service.lookup.build import (
    DEFAULT_GRID_LEVEL,
    DEFAULT_MAX_VERTICES,
    create_table,
    register,
)
from service.lookup.model import SourceTable


def lookup_table(dataset: Dataset) -> str:
    """The live name of a dataset's lookup table: ``gadm.gadm_lookup`` (see
    :func:`service.load.names.lookup_table`)."""
    return f"{dataset.schemas[0]}.{names.lookup_table(dataset.name)}"


def staging_table(dataset: Dataset, load_id: int) -> str:
    """The staging lookup table of load ``load_id`` (unqualified, in the staging schema):
    ``gadm__gadm_lookup__l17``, swapped in as :func:`lookup_table`. It starts with the
    dataset's stem, as its layers' staging tables and its retired tables do."""
    return names.staging_table(dataset.stem, names.lookup_table(dataset.name), load_id)


def sources(dataset: Dataset, staged: Mapping[str, str]) -> list[SourceTable]:
    """The dataset's lookup sources: by level if its k-th layer has ``gid_k`` (GADM's
    levels), else by each layer's key (time zones)."""
    if all(f"gid_{_level(layer, k)}" in {f.column for f in layer.fields}
           for k, layer in enumerate(dataset.layers)):
        return gadm_sources(dataset, staged)
    return timezone_sources(dataset, staged)


def gadm_sources(dataset: Dataset, staged: Mapping[str, str]) -> list[SourceTable]:
    """One source per GADM level: key ``gid_k``, name ``name_k`` (``country`` at level 0).

    ``staged`` maps each layer's live table (``gadm.adm_2``) to the staging table to read
    (``gadm__adm_2__l17``, in the staging schema, or qualified).
    """
    out = []
    for k, layer in enumerate(dataset.layers):
        level = _level(layer, k)
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


def _level(layer: Layer, position: int) -> int:
    """A GADM layer's level: its own (a load of some levels only keeps theirs), else its
    position in the dataset."""
    return layer.level if layer.level is not None else position


def _qualified(table: str) -> str:
    return table if "." in table else f"{STAGING}.{table}"


def create_staging(conn: psycopg.Connection, dataset: Dataset, load_id: int,
                   staged: Mapping[str, str]) -> str:
    """Create (or replace) load ``load_id``'s empty staging lookup table, registered as a
    lookup of ``dataset``'s layers (the comment moves with the swap); returns its name."""
    table = staging_table(dataset, load_id)
    target = f"{STAGING}.{table}"
    create_table(conn, target)
    register(conn, target, dataset.name, sources(dataset, staged), DEFAULT_MAX_VERTICES,
             DEFAULT_GRID_LEVEL)
    return table
