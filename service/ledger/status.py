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
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

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
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute("SELECT * FROM geoload.runs WHERE run_id = %s", (run_id,)).fetchone()
        if run is None:
            return None
        loads = cur.execute("SELECT * FROM geoload.loads WHERE run_id = %s ORDER BY load_id",
                            (run_id,)).fetchall()
        layers = cur.execute(
            "SELECT l.* FROM geoload.load_layers l JOIN geoload.loads d USING (load_id) "
            "WHERE d.run_id = %s ORDER BY l.load_id, l.layer", (run_id,)).fetchall()
        partial = cur.execute(
            "SELECT c.load_id, c.layer, c.chunk_no FROM geoload.chunks c "
            "JOIN geoload.loads d USING (load_id) WHERE d.run_id = %s AND c.status <> 'loaded' "
            "AND d.status <> ALL(%s)", (run_id, list(TERMINAL))).fetchall()
    inflight = live.chunks(run_id) if live and partial else {}
    downloads = live.downloads(run_id) if live else {}
    return RunStatus(
        run_id=run_id, created_at=run["created_at"], origin=run["origin"],
        retry_of=run["retry_of"],
        datasets=[_dataset_status(load, layers, partial, inflight, downloads) for load in loads],
    )


def _described(options: dict[str, Any] | None) -> str:
    chosen = LoadOptions.from_json(options)
    return chosen.describe() if chosen else ""


def _dataset_status(load: dict[str, Any], layers: list[dict[str, Any]],
                    partial: list[dict[str, Any]], inflight: dict[str, int],
                    downloads: dict[str, Any]) -> DatasetStatus:
    mine = [row for row in layers if row["load_id"] == load["load_id"]]
    extra: dict[str, int] = {}
    for chunk in partial:
        if chunk["load_id"] == load["load_id"]:
            key = chunk_key(load["dataset"], chunk["layer"], chunk["chunk_no"])
            extra[chunk["layer"]] = extra.get(chunk["layer"], 0) + inflight.get(key, 0)
    return DatasetStatus(
        dataset=load["dataset"], status=load["status"], release=load["release"],
        source_url=load["source_url"], bytes=load["bytes"], sha256=load["sha256"],
        started_at=load["started_at"], finished_at=load["finished_at"], error=load["error"],
        error_step=load["error_step"], download=downloads.get(load["dataset"]),
        superseded_by=load["superseded_by"],
        strict=load["strict"], warnings=data_warnings.from_json(load["warnings"]),
        options=_described(load.get("options")),
        layers=[LayerStatus(
            layer=row["layer"], table=row["target_table"], source=row["source_count"],
            loaded=min(row["source_count"], row["loaded"] + extra.get(row["layer"], 0)),
            chunks_total=row["chunks_total"], chunks_done=row["chunks_done"],
            status=row["status"], repaired=row["repaired"], empty=row["empty"],
            dropped=row["dropped"],
        ) for row in mine],
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
