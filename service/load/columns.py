"""Decide a target table's columns from the catalog and the source layer's header.

Upstream's schema drifts; a careful user wants the load to go through and to be told:

- a key field (GADM's ``GID_k`` and ``COUNTRY``, ``tzid``) missing, or of another type,
  fails the load: rows without their keys can't be joined or told apart;
- any other field the catalog expects but the file lacks still gets its column, NULL,
  so the table keeps the shape users' queries rely on;
- a non-key field of another type is loaded as text, whatever it holds;
- a field the catalog does not know is loaded, lower-cased, after the catalog's columns.

Each of the last three is a :class:`~service.data_warnings.DataWarning`. Two fields that
collide once lower-cased, or a name PostgreSQL can't hold, fail here, before any row
moves, with the list of what the source has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from service.catalog import Field, Layer
from service.catalog.model import SOURCE_FID
from service.data_warnings import (
    MISSING_FIELD,
    TYPE_CHANGED,
    UNKNOWN_FIELD,
    DataWarning,
)
from service.errors import BadSource

if TYPE_CHECKING:
    from service.read import LayerInfo, SourceField

GEOMETRY_COLUMN = "geom"
#: PostgreSQL truncates longer identifiers, which could merge two columns.
MAX_IDENTIFIER_BYTES = 63
#: Where the source's feature id goes when it is the key.
FID_SOURCE = "__fid"
#: The column type a field of an unexpected type is loaded as.
FALLBACK_TYPE = "text"


@dataclass(frozen=True)
class Column:
    """A target column: its name, the source field it is read from (None: the source has
    no such field and the column stays NULL), its PostgreSQL type."""

    name: str
    source: str | None
    type: str

    def as_json(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, str | None]) -> "Column":
        return cls(str(data["name"]), data["source"], str(data["type"]))


@dataclass(frozen=True)
class ColumnPlan:
    """The columns of a layer's table, and what differs from the catalog."""

    columns: list[Column]
    warnings: list[DataWarning] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """Source fields to read, the fid aside."""
        return [c.source for c in self.columns if c.source not in (None, FID_SOURCE)]


def plan_columns(layer: Layer, info: "LayerInfo") -> ColumnPlan:
    """The catalog's columns in its order (the fid first when it is the key), then the
    fields it does not know, in source order."""
    by_lower = _by_lower(layer, info)
    _check_keys(layer, info, by_lower)
    columns = [Column(SOURCE_FID, FID_SOURCE, "bigint")] if layer.key == SOURCE_FID else []
    warnings: list[DataWarning] = []
    for expected in layer.fields:
        column, warning = _expected_column(layer, expected, by_lower.get(expected.name.lower()))
        columns.append(column)
        warnings += [warning] if warning else []
    known = {f.name.lower() for f in layer.fields}
    for extra in (f for f in info.fields if f.name.lower() not in known):
        columns.append(Column(extra.name.lower(), extra.name, extra.pg_type))
        warnings.append(_unknown(layer, extra))
    _check_names(layer, info, columns)
    return ColumnPlan(columns, warnings)


def _by_lower(layer: Layer, info: "LayerInfo") -> dict[str, "SourceField"]:
    found: dict[str, SourceField] = {}
    for source in info.fields:
        twin = found.get(source.name.lower())
        if twin is not None:
            raise _bad(layer, info, f"fields {twin.name!r} and {source.name!r} become the "
                       "same column once lower-cased")
        found[source.name.lower()] = source
    return found


def _check_keys(layer: Layer, info: "LayerInfo", by_lower: dict[str, "SourceField"]) -> None:
    """Keys must be there, as the catalog types them: no load is better than unjoinable rows."""
    keys = [f for f in layer.fields if f.key]
    missing = [f.name for f in keys if f.name.lower() not in by_lower]
    if missing:
        raise _bad(layer, info, f"required key field(s) {', '.join(missing)} missing")
    for key in keys:
        found = by_lower[key.name.lower()]
        if found.pg_type != key.type:
            raise _bad(layer, info, f"key field {found.name!r} is {found.pg_type}, "
                       f"the catalog expects {key.type}")


def _expected_column(layer: Layer, expected: Field,
                     found: "SourceField | None") -> tuple[Column, DataWarning | None]:
    if found is None:
        return Column(expected.column, None, expected.type), DataWarning(
            MISSING_FIELD, layer.name, expected.name,
            f"field {expected.name} is missing from the source; column {expected.column} is "
            "created and left NULL")
    if found.pg_type == expected.type:
        return Column(expected.column, found.name, expected.type), None
    return Column(expected.column, found.name, FALLBACK_TYPE), DataWarning(
        TYPE_CHANGED, layer.name, found.name,
        f"field {found.name} is {found.pg_type}, the catalog expects {expected.type}; "
        f"loaded as {FALLBACK_TYPE}")


def _unknown(layer: Layer, extra: "SourceField") -> DataWarning:
    return DataWarning(UNKNOWN_FIELD, layer.name, extra.name,
                       f"field {extra.name} ({extra.pg_type}) is not in the catalog; "
                       f"loaded as column {extra.name.lower()}")


def _check_names(layer: Layer, info: "LayerInfo", columns: list[Column]) -> None:
    names = [c.name for c in columns]
    for name in names:
        if name == GEOMETRY_COLUMN or names.count(name) > 1:
            raise _bad(layer, info, f"field {name!r} collides with a column geoload adds")
        if len(name.encode()) > MAX_IDENTIFIER_BYTES or not name or "\x00" in name:
            raise _bad(layer, info, f"field name {name[:80]!r} can't be a PostgreSQL column "
                       f"(empty, NUL or over {MAX_IDENTIFIER_BYTES} bytes)")


def _bad(layer: Layer, info: "LayerInfo", problem: str) -> BadSource:
    present = ", ".join(f"{f.name} ({f.pg_type})" for f in info.fields) or "no fields"
    return BadSource(f"layer {layer.name!r}: {problem}; the layer has {present}",
                     hint="upstream changed its schema; update the catalog entry to match")
