"""What changed between the live version of a layer and the one about to replace it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Compared:
    """One layer to compare: its live table, the staging table replacing it, its columns.

    ``key`` identifies an area across releases (``tzid``; ``gid_k`` at GADM level k, not
    the feature id, which GADM renumbers); ``names`` are the fields whose change makes it
    "renamed". ``staging`` is None for a layer the live version has and the new one lacks
    (``--levels 0-1`` over ``0-3``): all its areas are removed from the version.
    """

    live: str
    staging: str | None
    key: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Renamed:
    key: str
    #: field -> (before, after), only the fields that differ
    fields: dict[str, tuple[str | None, str | None]]


@dataclass(frozen=True)
class Reshaped:
    """Areas are km² on the WGS84 spheroid (``ST_Area`` of geography); None for a
    geometry that is NULL on that side."""

    key: str
    area_before_km2: float | None
    area_after_km2: float | None
    symdiff_km2: float | None


@dataclass(frozen=True)
class LayerChanges:
    source: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[Renamed, ...] = ()
    reshaped: tuple[Reshaped, ...] = ()

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed),
                "renamed": len(self.renamed), "reshaped": len(self.reshaped)}


@dataclass(frozen=True)
class ChangeReport:
    """A dataset's changes by a load; ``first_load`` means there was nothing to compare."""

    dataset: str
    load_id: int
    first_load: bool
    layers: tuple[LayerChanges, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        total = {"added": 0, "removed": 0, "renamed": 0, "reshaped": 0}
        for layer in self.layers:
            for kind, n in layer.counts().items():
                total[kind] += n
        return total

    def summary(self) -> str:
        """One line: what a person wants to know first."""
        if self.first_load:
            return (f"{self.dataset}: first load (load {self.load_id}), nothing to compare "
                    "with: no change report")
        c = self.counts()
        return (f"{self.dataset} (load {self.load_id}): {c['added']} added, {c['removed']} "
                f"removed, {c['renamed']} renamed, {c['reshaped']} reshaped")

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "load_id": self.load_id, "first_load": self.first_load,
                "seconds": round(self.seconds, 3), "counts": self.counts(),
                "summary": self.summary(),
                "layers": [{"source": lay.source, "counts": lay.counts(),
                            "added": list(lay.added), "removed": list(lay.removed),
                            "renamed": [{"key": r.key, "fields": {f: list(v) for f, v
                                                                  in r.fields.items()}}
                                        for r in lay.renamed],
                            "reshaped": [vars(r) for r in lay.reshaped]}
                           for lay in self.layers]}
