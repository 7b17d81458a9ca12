"""fetch_source: download and verify a dataset's source, and pin its version for the run."""

from __future__ import annotations

import logging

import psycopg

from service.errors import Cancelled
from service.fetch import fetch
from service.identity import worker_id
from service.ledger import loads
from service.ledger.records import TERMINAL
from service.live import Live
from service.pipeline.cancel import StopWhenCancelled
from service.pipeline.context import Outcome, check_ids, load_context, skipped
from service.settings import Settings
from service.throttle import Every

log = logging.getLogger(__name__)
#: Seconds between a download's progress reports to the ledger, where the sweep looks for
#: loads that stopped moving (Redis, for the progress bars, hears more often).
LEDGER_PROGRESS_S = 5.0


def fetch_source(settings: Settings, live: Live, run_id: str, dataset: str) -> Outcome:
    """Bring the source into this host's cache and record what was fetched.

    The plan step comes next through the producer's pipeline, so nothing is
    returned to send; a redelivered fetch finds the file cached and the version
    already pinned, and changes nothing.
    """
    ds = check_ids(run_id, dataset)
    with load_context(settings, run_id, dataset) as (conn, load):
        if load.finished:
            return skipped(f"load is {load.status}", run_id=run_id, dataset=dataset)
        with conn.transaction():
            loads.set_status(conn, load.load_id, "fetching",
                             unless=(*TERMINAL, "loading", "indexing"))
        progress = _Progress(conn, live, load.load_id, run_id, dataset,
                             StopWhenCancelled(settings, load.load_id, dataset))
        try:
            local = fetch(ds, settings, pinned_sha256=load.sha256, progress=progress)
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
