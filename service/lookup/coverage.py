"""Which live datasets no lookup can answer from: published without a lookup table.

A dataset loaded with ``GEOLOAD_LOOKUP=0`` (or rolled back to a kept version) is live, but
its areas are in no lookup table, so a point in them answers empty, as open sea does.
Answers name such datasets (:attr:`~service.lookup.model.Answer.unindexed`), so that
"nothing here" and "nothing looked at" read differently.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from service import catalog
from service.errors import UnknownDataset
from service.ledger import loads
from service.lookup.model import Registered, Unindexed


def unindexed(conn: psycopg.Connection, tables: Sequence[Registered],
              datasets: Sequence[str] | None = None) -> tuple[Unindexed, ...]:
    """Live datasets (of ``datasets``, if given) with none of ``tables`` in their schema."""
    indexed = {(t.dataset, t.table.split(".", 1)[0]) for t in tables}
    out = []
    for dataset, schema in loads.live_schemas(conn):
        if datasets is not None and dataset not in datasets:
            continue
        where = schema or _catalog_schema(dataset)
        if where is not None and (dataset, where) not in indexed:
            out.append(Unindexed(dataset, schema))
    return tuple(out)


def _catalog_schema(dataset: str) -> str | None:
    """Where the catalog puts the dataset's tables; None for one it no longer lists."""
    try:
        return catalog.get(dataset).schemas[0]
    except UnknownDataset:
        return None
