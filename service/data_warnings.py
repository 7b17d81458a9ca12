"""What a load changed or could not keep from what upstream published, said once per finding.

A careful user wants a load to go through when upstream drifts a little (a field
dropped or retyped, a field added, one feature whose geometry is beyond repair),
and wants to be told. Each finding is a :class:`DataWarning`: planning records the
schema drift, chunks record dropped features, and both end up in
``geoload.loads.warnings``, which ``status``, ``enqueue --wait`` and the dashboard
show. A load run in strict mode fails on the first warning instead (:func:`refusal`).

>>> w = DataWarning(MISSING_FIELD, "ADM_4", "NL_NAME_4", "field NL_NAME_4 is missing …")
>>> DataWarning.from_json(w.as_json()) == w
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from service.errors import BadSource

#: A field the catalog expects is not in the file: its column is created, NULL.
MISSING_FIELD = "missing_field"
#: A field the catalog does not know: loaded, lower-cased.
UNKNOWN_FIELD = "unknown_field"
#: A non-key field of another type than the catalog's: loaded as text.
TYPE_CHANGED = "type_changed"
#: Features kept with ``geom`` NULL: no polygonal part after repair, outside lon/lat, bad WKB.
DROPPED_FEATURES = "dropped_features"

#: Dropped features listed by fid (and key) per chunk and per layer; the rest are counted.
#: Bounds what a pathological file (every feature broken) can write into the ledger.
MAX_LISTED = 100
#: Dropped features named in a warning's message; all :data:`MAX_LISTED` are in its data.
MAX_IN_MESSAGE = 10


@dataclass(frozen=True)
class DroppedFeature:
    """A feature whose row was kept without its geometry, and why."""

    fid: int
    key: str | None
    problem: str

    def describe(self, key_field: str | None) -> str:
        named = f" ({key_field} {self.key!r})" if key_field and self.key is not None else ""
        return f"fid {self.fid}{named}: {self.problem}"


@dataclass(frozen=True)
class DataWarning:
    """One finding about a layer: ``kind`` (see the constants above), the layer, the field
    it is about (the feature key's field for dropped features), a sentence for a person,
    and for dropped features how many there were and the first :data:`MAX_LISTED`."""

    kind: str
    layer: str
    field: str | None
    message: str
    count: int = 0
    features: tuple[DroppedFeature, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DataWarning":
        features = tuple(DroppedFeature(**f) for f in data.get("features") or ())
        return cls(**{**data, "features": features})


def from_json(rows: Iterable[dict[str, Any]] | None) -> list[DataWarning]:
    """Warnings as stored in ``geoload.loads.warnings`` (NULL: none)."""
    return [DataWarning.from_json(row) for row in rows or ()]


def to_json(warnings: Iterable[DataWarning]) -> list[dict[str, Any]]:
    return [w.as_json() for w in warnings]


def dropped(layer: str, key_field: str | None, count: int,
            features: Sequence[DroppedFeature]) -> DataWarning:
    """The warning for a layer's ``count`` features kept with ``geom`` NULL."""
    listed = tuple(sorted(features, key=lambda f: f.fid)[:MAX_LISTED])
    shown = "; ".join(f.describe(key_field) for f in listed[:MAX_IN_MESSAGE])
    more = f"; and {count - MAX_IN_MESSAGE:,} more" if count > MAX_IN_MESSAGE else ""
    return DataWarning(DROPPED_FEATURES, layer, key_field,
                       f"{count:,} feature(s) kept with geom NULL, their geometry could not be "
                       f"loaded faithfully: {shown}{more}", count=count, features=listed)


def line(warning: DataWarning) -> str:
    """One line for a terminal: ``ADM_4: field NL_NAME_4 is missing …``."""
    return f"{warning.layer}: {warning.message}"


def refusal(warnings: Sequence[DataWarning], what: str) -> BadSource:
    """The error of a strict load that met ``warnings``: strict mode loads nothing that
    differs from what the catalog describes or from what upstream published."""
    shown = "; ".join(line(w) for w in warnings[:MAX_IN_MESSAGE])
    more = f"; and {len(warnings) - MAX_IN_MESSAGE} more" if len(warnings) > MAX_IN_MESSAGE \
        else ""
    return BadSource(f"{what}: strict mode refuses data warnings: {shown}{more}",
                     hint="load without --strict (GEOLOAD_STRICT=0 for the scheduler) to "
                          "accept them as warnings, or update the catalog entry to match")
