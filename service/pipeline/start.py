"""Start a run: record it and its loads, then send one group of fetch → plan pipelines.

The run is recorded before anything is sent, so that every message finds its load;
if sending fails, its loads fail saying so, and the error is raised. :func:`retry` starts
a run of another run's failed or cancelled datasets: ``geoload retry`` and the
dashboard's Retry button both call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from service import catalog
from service.catalog import Dataset
from service.catalog.options import LoadOptions, resolve
from service.errors import NothingToRetry, UnknownRun
from service.fetch.releases import release_for
from service.ledger import loads, runs, schema
from service.pipeline.broker import send_pipelines
from service.pipeline.messages import FETCH, PLAN, Next
from service.settings import Settings


@dataclass(frozen=True)
class Started:
    run_id: str
    datasets: list[str]
    message_ids: list[list[str]]


def start(settings: Settings, conn: psycopg.Connection, broker: Any, datasets: list[Dataset],
          *, origin: str = "cli", retry_of: str | None = None, strict: bool = False,
          options: dict[str, LoadOptions] | None = None) -> Started:
    """Record a run and publish one group of fetch → plan pipelines, one per dataset.

    ``strict``: its loads fail on data warnings instead of recording them. ``options``
    per dataset name; a retry (``retry_of``) reuses the options its run recorded; a
    dataset without is resolved from this producer's ``settings``, so that no worker's
    environment decides what is loaded.
    """
    schema.ensure(conn)
    if retry_of and options is None:
        options = loads.options_of(conn, retry_of)
    names = [d.name for d in datasets]
    fixed = {d.name: (options or {}).get(d.name)
             or resolve(d, settings, release=release_for(d, settings)) for d in datasets}
    releases = {name: opts.release for name, opts in fixed.items()}
    run_id = runs.create(conn, names, releases, origin=origin, retry_of=retry_of, strict=strict,
                         options=fixed)
    pipelines = [[Next(FETCH, (run_id, name)), Next(PLAN, (run_id, name))] for name in names]
    try:
        ids = send_pipelines(broker, settings, pipelines)
    except Exception as exc:
        runs.fail_unsent(conn, run_id, f"not enqueued: {exc}", type(exc).__name__)
        raise
    return Started(run_id, names, ids)


def retry(settings: Settings, conn: psycopg.Connection, broker: Any, run_id: str, *,
          datasets: list[str] | None = None, origin: str = "cli") -> Started:
    """A new run, linked to ``run_id`` (``retry_of``), of its failed or cancelled datasets
    (of those, only ``datasets`` if given), as the first asked: its options, and strict if
    it was."""
    schema.ensure(conn)
    retryable = runs.retryable(conn, run_id)
    if retryable is None:
        raise UnknownRun(f"no run {run_id!r}", hint="list the runs with: geoload status")
    chosen = [name for name in retryable if datasets is None or name in datasets]
    if not chosen:
        what = ", ".join(datasets) if datasets else "no dataset"
        raise NothingToRetry(f"run {run_id}: {what} failed or was cancelled, so there is "
                             "nothing to retry", hint="start a new load: geoload load DATASET")
    return start(settings, conn, broker, catalog.resolve(chosen), origin=origin,
                 retry_of=run_id, strict=runs.strict(conn, run_id))
