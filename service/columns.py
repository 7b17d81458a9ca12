"""Decide a target table's columns from the catalog and the source layer's header.

The catalog names the fields a layer must have; the source may carry more,
which are kept (lower-cased) unless the catalog says otherwise. A missing
field, a field of another type, or two fields that collide once lower-cased
fail here, before any row moves, with the list of what the source has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from service.catalog import Layer
from service.catalog.model import SOURCE_FID
from service.errors import BadSource

if TYPE_CHECKING:
    from service.read import LayerInfo

GEOMETRY_COLUMN = "geom"
#: PostgreSQL truncates longer identifiers, which could merge two columns.
MAX_IDENTIFIER_BYTES = 63
#: Where the source's feature id goes when it is the key.
FID_SOURCE = "__fid"


@dataclass(frozen=True)
class Column:
    """A target column: its name, the source field it is read from, its PostgreSQL type."""

    name: str
    source: str
    type: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


def plan_columns(layer: Layer, info: "LayerInfo") -> list[Column]:
    """Target columns in source order, the key first when it is the source fid."""
    by_name = {f.name: f for f in info.fields}
    by_lower: dict[str, str] = {}
    for field in info.fields:
        if field.name.lower() in by_lower:
            raise _bad(layer, info, f"fields {by_lower[field.name.lower()]!r} and {field.name!r} "
                       "become the same column once lower-cased")
        by_lower[field.name.lower()] = field.name
    _check_required(layer, info, by_name, by_lower)
    wanted = {by_lower[f.name.lower()] for f in layer.fields}
    columns = [Column(SOURCE_FID, FID_SOURCE, "bigint")] if layer.key == SOURCE_FID else []
    for field in info.fields:
        if layer.keep_other_fields or field.name in wanted:
            columns.append(Column(field.name.lower(), field.name, field.pg_type))
    _check_names(layer, info, columns)
    return columns


def _check_required(layer: Layer, info: "LayerInfo", by_name: dict, by_lower: dict) -> None:
    missing = [f.name for f in layer.fields if f.name.lower() not in by_lower]
    if missing:
        raise _bad(layer, info, f"required field(s) {', '.join(missing)} missing")
    for required in layer.fields:
        found = by_name[by_lower[required.name.lower()]]
        if found.pg_type != required.type:
            raise _bad(layer, info, f"field {found.name!r} is {found.pg_type}, "
                       f"the catalog expects {required.type}")


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
