"""What a load plans and reports, as the ledger stores it: shaped once, passed on typed.

:func:`service.load.plan.plan_layer` makes a :class:`PlannedLayer`; the ledger saves it
and reads back its :class:`LayerPlan` and each :class:`Chunk`, which
:func:`service.load.chunk.copy_chunk` takes and answers with :class:`ChunkCounts`.
Kept apart from the code that makes them so that reading a record imports no GDAL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.data_warnings import DataWarning, DroppedFeature
from service.load.columns import Column


@dataclass(frozen=True)
class Chunk:
    """A contiguous fid range of a layer, and its weight: the memory its geometry takes
    (its bytes plus twice its largest feature's, see :func:`service.load.plan.cut_chunks`)."""

    fid_first: int
    fid_last: int
    features: int
    weight: int
    #: The file it reads, in a load made of several (a GADM country code); '' for one file.
    part: str = ""


@dataclass(frozen=True)
class LayerPlan:
    """How a layer is loaded: where its rows go, how to read them, how many there are."""

    layer: str
    target_table: str
    staging_table: str
    driver: str
    fid_column: str
    columns: list[Column]
    source_count: int


@dataclass(frozen=True)
class PlannedLayer:
    """A layer's plan, the chunks it is cut into, and where its schema differs from the
    catalog's (see :mod:`service.load.columns`)."""

    plan: LayerPlan
    chunks: list[Chunk]
    warnings: list[DataWarning] = field(default_factory=list)


@dataclass(frozen=True)
class ChunkCounts:
    """What copying a chunk did: rows loaded, geometries empty, repaired and parts dropped,
    seconds per stage, and the features kept with geom NULL (the first of them listed)."""

    loaded: int
    empty: int
    repaired: int
    parts_dropped: int
    stages: dict[str, float] = field(default_factory=dict)
    dropped: int = 0
    dropped_features: list[DroppedFeature] = field(default_factory=list)
