"""fetch_source: download and verify a dataset's source, and pin its version for the run."""

from __future__ import annotations

from service import ledger
from service.fetch import fetch
from service.live import Live
from service.settings import Settings
from service.steps import Outcome, check_ids, load_context, skipped


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
            ledger.set_status(conn, load.load_id, "fetching",
                              unless=(*ledger.TERMINAL, "loading", "indexing"))

        def progress(done: int, total: int | None) -> None:
            live.download_progress(run_id, dataset, done, total)

        local = fetch(ds, settings, pinned_sha256=load.sha256, progress=progress)
        with conn.transaction():
            ledger.record_fetch(conn, load.load_id, local)
    return Outcome({
        "status": "fetched", "run_id": run_id, "dataset": dataset, "url": local.url,
        "bytes": local.validators.size, "sha256": local.validators.sha256,
        "downloaded": local.changed, "resumed_from": local.resumed_from,
        "worker": ledger.worker_id(),
    })

