"""Where a run stands: derived from its loads in the ledger, any time later.

A run's status is derived from its loads, never stored twice (:func:`run_state`): every
dataset published → succeeded; any failed → failing while others still work, failed
once all ended; all ended, some cancelled (none failed) → cancelled; all ended, some
superseded (a version fetched later was published instead) → superseded. Loaded counts
come from the chunk ledger in PostGIS, topped up with Redis's in-flight counts, so
progress survives a Redis restart.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg

from service import data_warnings
from service.catalog.options import LoadOptions
from service.data_warnings import DataWarning
from service.errors import ServiceUnavailable
from service.ledger.records import TERMINAL
from service.live import Live, chunk_key
from service.postgres import connect
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LayerStatus:
    layer: str
    table: str
    source: int
    loaded: int
    chunks_total: int
    chunks_done: int
    status: str
    repaired: int
    empty: int
    dropped: int = 0


@dataclass
class DatasetStatus:
    dataset: str
    status: str
    release: str | None
    source_url: str | None
    bytes: int | None
    sha256: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    error_step: str | None
    download: dict[str, Any] | None
    layers: list[LayerStatus] = field(default_factory=list)
    #: The run that published a version fetched later than this load's, instead of it.
    superseded_by: str | None = None
    strict: bool = False
    warnings: list[DataWarning] = field(default_factory=list)
    #: What the load was asked for beyond the catalog's defaults (countries, levels,
    #: schema, source), fixed at enqueue: "" for a default load.
    options: str = ""

    @property
    def loaded(self) -> int:
        return sum(layer.loaded for layer in self.layers)

    @property
    def total(self) -> int:
        return sum(layer.source for layer in self.layers)


@dataclass
class RunStatus:
    run_id: str
    created_at: datetime
    origin: str
    retry_of: str | None
    datasets: list[DatasetStatus]

    @property
    def status(self) -> str:
        return run_state([d.status for d in self.datasets])

    @property
    def finished(self) -> bool:
        return all(d.status in TERMINAL for d in self.datasets)

    @property
    def finished_at(self) -> datetime | None:
        ends = [d.finished_at for d in self.datasets]
        return max(e for e in ends if e) if self.finished and any(ends) else None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(status=self.status, finished=self.finished,
                    finished_at=self.finished_at)
        for dataset, raw in zip(self.datasets, data["datasets"]):
            raw.update(loaded=dataset.loaded, total=dataset.total)
        return data


def run_state(states: list[str]) -> str:
    """A run's status from its loads' statuses."""
    if all(s == "published" for s in states):
        return "succeeded"
    ended = all(s in TERMINAL for s in states)
    if "failed" in states:
        return "failed" if ended else "failing"
    if "cancelled" in states and ended:
        return "cancelled"
    if ended:
        return "superseded"
    return "queued" if all(s == "queued" for s in states) else "running"


def run_status(conn: psycopg.Connection, live: Live | None, run_id: str) -> RunStatus | None:
    """Where ``run_id`` stands now, or None if there is no such run."""
    run = conn.execute("SELECT created_at, origin, retry_of FROM geoload.runs WHERE run_id = %s",
                       (run_id,)).fetchone()
    if run is None:
        return None
    created_at, origin, retry_of = run
    layers = _layers(conn, run_id)
    extra = _in_flight(conn, live, run_id)
    downloads = live.downloads(run_id) if live else {}
    loads = conn.execute(_LOADS, (run_id,)).fetchall()
    return RunStatus(run_id=run_id, created_at=created_at, origin=origin, retry_of=retry_of,
                     datasets=[_dataset_status(load, layers.get(load[0], []), extra, downloads)
                               for load in loads])


_LOADS = ("SELECT load_id, dataset, status, release, source_url, bytes, sha256, started_at, "
          "finished_at, error, error_step, superseded_by, strict, warnings, options "
          "FROM geoload.loads WHERE run_id = %s ORDER BY load_id")


def _layers(conn: psycopg.Connection, run_id: str) -> dict[int, list[LayerStatus]]:
    """Each load's layers as the ledger has them: ``loaded`` counts committed chunks."""
    rows = conn.execute(
        "SELECT l.load_id, l.layer, l.target_table, l.source_count, l.loaded, l.chunks_total, "
        "l.chunks_done, l.status, l.repaired, l.empty, l.dropped FROM geoload.load_layers l "
        "JOIN geoload.loads d USING (load_id) WHERE d.run_id = %s ORDER BY l.load_id, l.layer",
        (run_id,)).fetchall()
    found: dict[int, list[LayerStatus]] = {}
    for load_id, *fields in rows:
        found.setdefault(load_id, []).append(LayerStatus(*fields))
    return found


def _in_flight(conn: psycopg.Connection, live: Live | None,
               run_id: str) -> dict[tuple[int, str], int]:
    """Rows that chunks still in progress have COPYed (Redis's counts), per (load, layer)."""
    partial = conn.execute(
        "SELECT c.load_id, d.dataset, c.layer, c.chunk_no FROM geoload.chunks c "
        "JOIN geoload.loads d USING (load_id) WHERE d.run_id = %s AND c.status <> 'loaded' "
        "AND d.status <> ALL(%s)", (run_id, list(TERMINAL))).fetchall()
    counts = live.chunks(run_id) if live and partial else {}
    extra: dict[tuple[int, str], int] = {}
    for load_id, dataset, layer, chunk_no in partial:
        extra[(load_id, layer)] = (extra.get((load_id, layer), 0)
                                   + counts.get(chunk_key(dataset, layer, chunk_no), 0))
    return extra


def _described(options: dict[str, Any] | None) -> str:
    chosen = LoadOptions.from_json(options)
    return chosen.describe() if chosen else ""


def _dataset_status(load: tuple[Any, ...], layers: list[LayerStatus],
                    extra: dict[tuple[int, str], int],
                    downloads: dict[str, Any]) -> DatasetStatus:
    """A row of :data:`_LOADS`, with its layers topped up by the rows in flight."""
    (load_id, dataset, status, release, source_url, size, sha256, started_at, finished_at,
     error, error_step, superseded_by, strict, warnings, options) = load
    return DatasetStatus(
        dataset=dataset, status=status, release=release, source_url=source_url, bytes=size,
        sha256=sha256, started_at=started_at, finished_at=finished_at, error=error,
        error_step=error_step, download=downloads.get(dataset), superseded_by=superseded_by,
        strict=strict, warnings=data_warnings.from_json(warnings), options=_described(options),
        layers=[replace(layer, loaded=min(layer.source,
                                          layer.loaded + extra.get((load_id, layer.layer), 0)))
                for layer in layers],
    )


class Poller:
    """Polls a run's status across PostGIS restarts: a lost connection is reopened.

    Returns the last status it saw while PostGIS is away, so that a watcher keeps
    waiting instead of dying with the connection.
    """

    def __init__(self, settings: Settings, live: Live | None, run_id: str,
                 conn: psycopg.Connection | None = None) -> None:
        self.settings, self.live, self.run_id, self.conn = settings, live, run_id, conn
        self.last: RunStatus | None = None

    def __call__(self) -> RunStatus | None:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = connect(self.settings, autocommit=True)
            self.last = run_status(self.conn, self.live, self.run_id)
        except (psycopg.OperationalError, ServiceUnavailable) as exc:
            log.warning("PostGIS unavailable while following run %s (%s); retrying",
                        self.run_id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            if self.conn is not None:
                self.conn.close()
            self.conn = None
        return self.last


def load_states(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Every run's load statuses, in one query (metrics count runs by :func:`run_state`)."""
    rows = conn.execute("SELECT run_id, array_agg(status) FROM geoload.loads GROUP BY run_id"
                        ).fetchall()
    return {str(run_id): list(states) for run_id, states in rows}


def superseded(dataset: DatasetStatus) -> str:
    """Why a superseded load's version was not published, for a person."""
    return (f"superseded by run {dataset.superseded_by}, which published a version of "
            f"{dataset.dataset} fetched later; this run's copy was dropped")
