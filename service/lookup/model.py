"""The records a lookup passes around: what a lookup table is built from, and answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from service.errors import GeoloadError
from service.load.names import ARCHIVE, STAGING

#: The prefix of a lookup table's comment; the rest is its :class:`Registered` as JSON.
COMMENT_PREFIX = "geoload lookup "
#: The live lookup tables, found by their comment: qualified name and the JSON in it. Those
#: being built (staging) and those kept with earlier versions (archive) are not answered from.
REGISTRY_SQL = f"""
SELECT format('%I.%I', n.nspname, c.relname) AS tbl,
       substr(d.description, {len(COMMENT_PREFIX) + 1}) AS meta
FROM pg_description d
JOIN pg_class c ON c.oid = d.objoid AND c.relkind = 'r'
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.classoid = 'pg_class'::regclass AND d.objsubid = 0
  AND d.description LIKE '{COMMENT_PREFIX}%' AND n.nspname NOT IN ('{STAGING}', '{ARCHIVE}')
ORDER BY 1
"""  # noqa: S608 - constants only



class BadPoint(GeoloadError, ValueError):
    """A latitude or longitude outside lon/lat bounds, or not a number: a usage error."""

    kind = "usage"


@dataclass(frozen=True)
class SourceTable:
    """One table a lookup table is cut from, and how its rows are labelled.

    ``table`` is read now (a staging table, at publish); ``publishes_as`` is the name it
    will have once live, which is what answers name. ``key`` and ``name`` are its columns
    (``name`` may be None: time zones have only ``tzid``); ``key_label`` and
    ``name_label`` are how answers label them (GADM's level 0 name column is ``country``,
    labelled ``name_0`` as every other level's ``name_k``).
    """

    table: str
    publishes_as: str
    level: int
    key: str
    name: str | None = None
    key_label: str | None = None
    name_label: str | None = None

    @property
    def labels(self) -> tuple[str, str | None]:
        return (self.key_label or self.key, self.name_label or self.name)


@dataclass(frozen=True)
class Registered:
    """A lookup table found in the database: what its comment says it holds."""

    table: str
    dataset: str
    max_vertices: int
    #: per source (live name): level, key label, name label
    sources: dict[str, tuple[int, str, str | None]]
    #: pieces lie in one cell of a 2**grid_level × 2**grid_level lon/lat grid
    grid_level: int

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "max_vertices": self.max_vertices,
                "grid_level": self.grid_level,
                "sources": {s: list(v) for s, v in self.sources.items()}}

    @classmethod
    def from_json(cls, table: str, data: dict[str, Any]) -> Registered:
        return cls(table, str(data["dataset"]), int(data["max_vertices"]),
                   {s: (int(v[0]), str(v[1]), v[2]) for s, v in data["sources"].items()},
                   int(data["grid_level"]))


@dataclass(frozen=True)
class BuildStats:
    """What building one lookup table cost, beside what it holds."""

    table: str
    sources: int
    features: int
    pieces: int
    max_vertices: int
    seconds: float
    table_bytes: int
    index_bytes: int


class Hit(NamedTuple):
    """One area a point is in (or on the border of).

    A named tuple, not a dataclass: a batch makes one per area per point, and a tuple is
    built several times faster (the 100,000-point benchmark makes 400,000).
    """

    dataset: str
    source: str
    level: int
    key: str
    name: str | None
    #: the point touches more than one area of this source: it is on a shared border
    on_border: bool
    key_label: str = "key"
    name_label: str | None = "name"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "level": self.level,
                               self.key_label: self.key}
        if self.name_label:
            out[self.name_label] = self.name
        out["on_border"] = self.on_border
        return out


class Unindexed(NamedTuple):
    """A live dataset without a lookup table (loaded with ``GEOLOAD_LOOKUP=0``, or rolled
    back): no answer holds its areas, which would otherwise read like open sea."""

    dataset: str
    #: the schema a user chose (``--schema``); '' for the catalog's
    schema: str = ""

    def advice(self) -> str:
        where = f" in schema {self.schema}" if self.schema else ""
        again = f" --schema {self.schema}" if self.schema else ""
        return (f"{self.dataset}{where} is published without a lookup table, so no answer "
                "includes its areas: load it again without GEOLOAD_LOOKUP=0 "
                f"(geoload load {self.dataset}{again})")

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "schema": self.schema or None,
                "advice": self.advice()}


class Answer(NamedTuple):
    """Everything known at one point: hits from every loaded lookup table, by dataset."""

    lat: float
    lon: float
    hits: tuple[Hit, ...] = ()
    #: live datasets no answer can include: they have no lookup table
    unindexed: tuple[Unindexed, ...] = ()

    def keys(self, source: str) -> list[str]:
        """The keys hit in ``source`` (a live table name), e.g. the tzids of one variant."""
        return [h.key for h in self.hits if h.source == source]

    def datasets(self) -> dict[str, list[Hit]]:
        out: dict[str, list[Hit]] = {}
        for hit in self.hits:
            out.setdefault(hit.dataset, []).append(hit)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"lat": self.lat, "lon": self.lon,
                "results": {d: [h.to_json() for h in hits]
                            for d, hits in self.datasets().items()},
                "without_lookup_table": [u.to_json() for u in self.unindexed]}
