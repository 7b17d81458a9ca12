"""fetch_source: download and verify a dataset's source, and pin its version for the run.

A load made of several files (GADM by country, ``enqueue --countries``) fetches them in
parallel, one message per file (``part``), on any host; the fetch that pins the last one
sends the plan.
"""

from __future__ import annotations

import logging

import psycopg

from service.errors import Cancelled
from service.fetch import fetch
from service.fetch.http import Validators
from service.identity import worker_id
from service.ledger import loads, parts
from service.ledger.records import TERMINAL, Load
from service.live import Live
from service.pipeline.cancel import StopWhenCancelled
from service.pipeline.context import Outcome, check_ids, dataset_of, load_context, skipped
from service.pipeline.messages import FETCH, PLAN, Next
from service.settings import Settings
from service.throttle import Every

log = logging.getLogger(__name__)
#: Seconds between a download's progress reports to the ledger, where the sweep looks for
#: loads that stopped moving (Redis, for the progress bars, hears more often).
LEDGER_PROGRESS_S = 5.0


def fetch_source(settings: Settings, live: Live, run_id: str, dataset: str,
                 part: str | None = None) -> Outcome:
    """Bring the source into this host's cache and record what was fetched.

    The plan step comes next through the producer's pipeline, so nothing is
    returned to send; a redelivered fetch finds the file cached and the version
    already pinned, and changes nothing. A load by country sends a fetch per country
    instead (and its plan waits for them).
    """
    check_ids(run_id, dataset, *((("part", part, str),) if part is not None else ()))
    with load_context(settings, run_id, dataset) as (conn, load):
        if load.finished:
            return skipped(f"load is {load.status}", run_id=run_id, dataset=dataset)
        countries = load.options.countries if load.options else ()
        if countries and part is None:
            return _fan_out(conn, load, countries)
        with conn.transaction():
            loads.set_status(conn, load.load_id, "fetching",
                             unless=(*TERMINAL, "loading", "indexing"))
        progress = _Progress(conn, live, load.load_id, run_id, dataset,
                             StopWhenCancelled(settings, load.load_id, dataset))
        try:
            if part is not None:
                return _fetch_part(settings, conn, load, part, progress)
            local = fetch(dataset_of(load), settings, pinned_sha256=load.sha256,
                          progress=progress)
        except Cancelled:  # what came so far stays in the cache: a retry resumes from it
            return skipped("load was cancelled", run_id=run_id, dataset=dataset)
        finally:
            progress.watch.close()
        with conn.transaction():
            loads.record_fetch(conn, load.load_id, local.url, local.validators,
                               progress.order if local.changed else None)
    return Outcome({
        "status": "fetched", "run_id": run_id, "dataset": dataset, "url": local.url,
        "bytes": local.validators.size, "sha256": local.validators.sha256,
        "downloaded": local.changed, "resumed_from": local.resumed_from,
        "worker": worker_id(),
    })


def _fan_out(conn: psycopg.Connection, load: Load, countries: tuple[str, ...]) -> Outcome:
    """One fetch per country, to run in parallel on any worker; a redelivery resends them
    (each finds its file pinned and changes nothing)."""
    with conn.transaction():
        parts.ensure(conn, load.load_id, countries)
    return Outcome({"status": "fanned out", "run_id": load.run_id, "dataset": load.dataset,
                    "parts": list(countries), "worker": worker_id()},
                   [Next(FETCH, (load.run_id, load.dataset, code)) for code in countries])


def _fetch_part(settings: Settings, conn: psycopg.Connection, load: Load, part: str,
                progress: _Progress) -> Outcome:
    """Fetch one country's file and pin it; the fetch that pins the last sends the plan,
    with the load's version (one sha256 over every file's) pinned on the load row. Its
    progress reaches the ledger, so that the sweep never takes a long download for a stall."""
    pinned = parts.pinned(conn, load.load_id)
    if part not in pinned:
        from service.errors import BadMessage

        raise BadMessage(f"load of {load.dataset!r} in run {load.run_id!r} has no part {part!r}",
                         dataset=load.dataset, hint="discard the message")
    assert load.options is not None
    local = fetch(load.options.part(dataset_of(load), part), settings,
                  pinned_sha256=pinned[part], progress=progress)
    follow: list[Next] = []
    with conn.transaction():
        locked = loads.get(conn, load.run_id, load.dataset, lock=True)
        assert locked is not None
        parts.record(conn, load.load_id, part, local.url, local.validators)
        if all(parts.pinned(conn, load.load_id).values()) and locked.sha256 is None:
            sha256, size = parts.combined(conn, load.load_id)
            template = load.options.url or ""
            loads.record_fetch(conn, load.load_id, template,
                               Validators(template, None, None, size, sha256))
            follow = [Next(PLAN, (load.run_id, load.dataset))]
        elif locked.sha256 is not None:
            follow = [Next(PLAN, (load.run_id, load.dataset))]  # a redelivery: plan may be lost
    return Outcome({"status": "fetched", "run_id": load.run_id, "dataset": load.dataset,
                    "part": part, "url": local.url, "bytes": local.validators.size,
                    "sha256": local.validators.sha256, "downloaded": local.changed,
                    "worker": worker_id()}, follow)


class _Progress:
    """A download's progress: to Redis for the progress bars, to the ledger for the sweep.

    The first report comes when upstream has answered with the bytes: that is when this
    load takes its place in the :func:`~service.ledger.loads.fetch_order`. Ledger writes are
    best effort: PostGIS away for a moment must not cut a long download.
    """

    def __init__(self, conn: psycopg.Connection, live: Live, load_id: int, run_id: str,
                 dataset: str, watch: StopWhenCancelled) -> None:
        self.conn, self.live, self.load_id, self.watch = conn, live, load_id, watch
        self.run_id, self.dataset = run_id, dataset
        self.order: int | None = None
        self.due = Every(LEDGER_PROGRESS_S)

    def __call__(self, done: int, total: int | None) -> None:
        self.live.download_progress(self.run_id, self.dataset, done, total)
        self.watch.check()
        if self.due.due() or done == total:
            try:
                if self.order is None:
                    self.order = loads.fetch_order(self.conn)
                loads.download_progress(self.conn, self.load_id, done)
            except psycopg.Error as exc:
                log.warning("download progress of %s not recorded: %s", self.dataset, exc)
