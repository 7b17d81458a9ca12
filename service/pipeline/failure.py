"""record_failure: a message failed for good, so its dataset and run fail with its error.

Dramatiq's group completion callback never fires when a child fails, so
geoload records failures itself: the worker middleware sends this message when
a message is out of retries (or refused at once), and the load is marked failed
exactly once. Its staging tables are dropped (what is still in use is left for the
sweep); the live tables are untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from service.ledger import chunks, layers, loads
from service.live import Live
from service.pipeline.broker import send
from service.pipeline.context import Outcome
from service.pipeline.messages import CHUNK, FAILURE, Next, describe
from service.postgres import connect
from service.publish import swap
from service.settings import Settings

log = logging.getLogger(__name__)


def report_dead(broker: dramatiq.Broker, settings: Settings, actor: str, args: list[Any],
                error_type: str, error: str, worker: str, attempts: int) -> None:
    """A message failed for good: send ``record_failure`` for it (not for one of its own,
    which stays in the dead-letter queue: failing it again would loop)."""
    if actor != FAILURE:
        send(broker, settings, [Next(FAILURE, (actor, args, error_type, error, worker,
                                               attempts))])


def record_failure(settings: Settings, live: Live, actor: object, args: list[Any],
                   error_type: object, error: object, worker: str | None = None,
                   attempts: int | None = None) -> Outcome:
    """Fail the message's load (and so its run) with the error, once; ``worker`` is the
    process that ran the last attempt, ``attempts`` how many it took."""
    actor, error_type, error = str(actor), str(error_type), str(error)
    ids = describe(actor, args)
    run_id, dataset = ids.get("run_id"), ids.get("dataset")
    if not isinstance(run_id, str) or not isinstance(dataset, str):
        log.warning("failed message %s%r belongs to no run: %s", actor, args, error)
        return Outcome({"status": "ignored", "reason": "message names no run", "actor": actor})
    with connect(settings, autocommit=True) as conn:
        with conn.transaction():
            load = loads.get(conn, run_id, dataset, lock=True)
            if load is None:
                return Outcome({"status": "ignored", "reason": "no such load", **ids})
            chunk_no = ids.get("chunk_no")
            if actor == CHUNK and isinstance(chunk_no, int):
                chunks.fail(conn, load.load_id, str(ids["layer"]), chunk_no, error, error_type)
            failed_now = loads.fail(conn, load.load_id, error, error_type, actor,
                                    worker=worker, attempts=attempts)
            ended_as = "failed" if failed_now else load.status
            unused = ended_as in ("failed", "superseded", "cancelled")
            tables = layers.staging_tables(conn, load.load_id) if unused else []
        # A redelivery drops what the first delivery could not; one busy with a late COPY
        # is left for the sweep.
        dropped = swap.drop_staged(conn, tables)
    return Outcome({"status": "failed" if failed_now else "already-ended", **ids,
                    "error": error, "dropped": dropped})


def record_attempt(settings: Settings, actor: str, args: list[Any], error_type: str,
                   error: str) -> None:
    """An attempt failed and may be retried: a chunk keeps its error in its history.

    Without this, a chunk that failed twice and then loaded showed no trace of either
    failure, and one that failed for good only its last.
    """
    ids = describe(actor, args)
    run_id, dataset, layer, chunk_no = (ids.get(k) for k in ("run_id", "dataset", "layer",
                                                            "chunk_no"))
    if actor != CHUNK or not (isinstance(run_id, str) and isinstance(dataset, str)
                              and isinstance(layer, str) and isinstance(chunk_no, int)):
        return
    with connect(settings, autocommit=True) as conn:
        load = loads.get(conn, run_id, dataset)
        if load is not None:
            chunks.attempt_failed(conn, load.load_id, layer, chunk_no, error_type, error)

