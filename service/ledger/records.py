"""What the ledger hands out: typed records, built once from a row, never a row dict.

The plan (:class:`~service.load.records.LayerPlan`, with its columns) and each chunk's
fid range (:class:`~service.load.records.Chunk`) come back as the load stage made them;
the records here add where the ledger stands on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.catalog.options import LoadOptions
from service.load.records import Chunk, LayerPlan

#: Load statuses after which nothing more happens to the load. A load is superseded when a
#: load of its dataset that learnt its version from upstream later was published first;
#: cancelled when someone cancelled its run (``geoload cancel``, the dashboard).
TERMINAL = ("published", "failed", "superseded", "cancelled")
#: Load statuses a retry starts again.
RETRYABLE = ("failed", "cancelled")


@dataclass(frozen=True)
class Load:
    """A dataset's load in a run, as far as the steps need it."""

    load_id: int
    run_id: str
    dataset: str
    status: str
    sha256: str | None
    layers_total: int | None
    layers_ready: int
    #: Data warnings fail this load instead of being recorded (``enqueue --strict``).
    strict: bool = False
    #: Its choices, fixed at enqueue; None for loads enqueued before options were recorded.
    options: LoadOptions | None = None
    #: The staging table its chunks cut lookup pieces into (None: planned before lookup).
    lookup_staging: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def target_schema(self) -> str:
        """The schema it publishes into; '' for the catalog's own."""
        return (self.options.schema if self.options else None) or ""


@dataclass(frozen=True)
class LookupCost:
    """What a load's lookup table cost, kept with the load (``geoload.loads.lookup``): the
    pieces its chunks cut, their bytes, and the seconds indexing them took at the finish."""

    #: the staging table the pieces were cut into (swapped in at publish)
    table: str
    pieces: int
    index_seconds: float
    table_bytes: int
    index_bytes: int


@dataclass(frozen=True)
class LayerState:
    """A planned layer, and where its loading stands: ``loading`` until indexed, then
    ``ready``."""

    plan: LayerPlan
    status: str
    chunks_total: int
    chunks_done: int
    loaded: int
    empty: int
    repaired: int
    parts_dropped: int
    dropped: int
    table_bytes: int | None

    @property
    def layer(self) -> str:
        return self.plan.layer

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    @property
    def all_chunks_loaded(self) -> bool:
        return self.chunks_done == self.chunks_total


@dataclass(frozen=True)
class ChunkState:
    """A chunk of a planned layer, and whether it is loaded."""

    layer: str
    chunk_no: int
    planned: Chunk
    status: str

    @property
    def loaded(self) -> bool:
        return self.status == "loaded"


@dataclass(frozen=True)
class Leftover:
    """A table of the staging schema that no unfinished load needs, and why."""

    table: str
    reason: str


@dataclass(frozen=True)
class Known:
    """A load of a dataset, as the refresh compares it with what upstream serves now."""

    run_id: str
    status: str
    release: str | None
    etag: str | None
    last_modified: str | None
    source_url: str | None
    bytes: int | None
    sha256: str | None


@dataclass(frozen=True)
class Stalled:
    """An unfinished load that has not moved for longer than any message may take."""

    load_id: int
    run_id: str
    dataset: str
    status: str


@dataclass(frozen=True)
class ClaimHolder:
    """Who holds a refresh's claim on a version: the run it started, or the claimer that is
    starting one."""

    run_id: str | None
    claimed_by: str
