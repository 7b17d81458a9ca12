"""sweep_stalled_loads: re-drive loads whose messages were lost, so that no run hangs.

Dramatiq acks a message after its middleware ran, and it swallows errors raised
there: a pipeline's next message (fetch → plan) or a retry that could not be
published while RabbitMQ blinked is then gone. Every step is idempotent, so the
cure is to send a stalled load's next messages again. A load is stalled when it
has not moved (a download in progress counts as moving) for longer than any
message may take, and nothing waits in the queue, ready or held by a worker,
that could still move it. A stalled load whose ledger names a layer the catalog
no longer has is failed instead: its messages could never run.

Whatever the queue holds, the sweep also drops the staging tables no unfinished
load needs (those of failed, superseded and published loads that their own
steps could not drop, and retired live tables), and reports them.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from service import catalog
from service.errors import ConfigError
from service.ledger import layers, leftovers, loads
from service.load.names import STAGING
from service.pipeline.broker import send_pipelines
from service.pipeline.messages import FETCH, PLAN, SWEEP, Next
from service.pipeline.plan import moves_on
from service.postgres import connect
from service.publish import swap
from service.settings import Settings

log = logging.getLogger(__name__)
#: Longer than the longest time limit (20 min) plus the longest retry backoff (5 min).
STALLED_AFTER_S = 30 * 60
#: How long the sweep waits for a leftover table something still uses, before leaving it.
LEFTOVER_LOCK_TIMEOUT = "1s"

def next_steps(conn: psycopg.Connection, load_id: int, run_id: str, dataset: str,
               status: str) -> list[list[Next]]:
    """What moves the load on from where it stands, as pipelines (most of one step)."""
    if status in ("queued", "fetching"):
        return [[Next(FETCH, (run_id, dataset)), Next(PLAN, (run_id, dataset))]]
    if status == "fetched":
        return [[Next(PLAN, (run_id, dataset))]]
    return [[step] for step in moves_on(conn, load_id, run_id, dataset)]


def sweep(settings: Settings, broker: Any, *, older_than_s: float = STALLED_AFTER_S,
          queued: int | None = None) -> dict[str, Any]:
    """Send stalled loads their next messages again; ``queued`` is the queue's backlog.

    A backlog means work is still on its way, which is not a stall: nothing is sent.
    Leftover staging tables are dropped either way.
    """
    with connect(settings, autocommit=True) as conn:
        if queued:
            result: dict[str, Any] = {"status": "skipped",
                                      "reason": f"{queued} message(s) still queued"}
        else:
            result = {"status": "swept", **_redrive(conn, settings, broker, older_than_s)}
        dropped, left = drop_leftovers(conn)
    for table, why in dropped.items():
        log.info("sweep dropped %s.%s: %s", STAGING, table, why)
    for key, failed in result.get("failed", {}).items():
        log.warning("sweep failed load %s: %s", key, failed["error"])
    return {**result, "dropped": dropped, "left": left}


def _redrive(conn: psycopg.Connection, settings: Settings, broker: Any,
             older_than_s: float) -> dict[str, dict[str, Any]]:
    redriven, failed = {}, {}
    for load in loads.stalled(conn, older_than_s):
        key = f"{load.run_id}/{load.dataset}"
        outdated = outdated_plan(conn, load.load_id, load.dataset)
        if outdated is not None:
            _fail(conn, load.load_id, outdated)
            failed[key] = {"status": load.status, "error": str(outdated)}
            continue
        pipelines = next_steps(conn, load.load_id, load.run_id, load.dataset, load.status)
        send_pipelines(broker, settings, pipelines)
        redriven[key] = {"status": load.status, "messages": len(pipelines)}
    return {"redriven": redriven, "failed": failed}


def outdated_plan(conn: psycopg.Connection, load_id: int, dataset: str) -> ConfigError | None:
    """Why the load's messages can't run under the catalog deployed now, if they can't:
    it was planned with layers (or for a dataset) the catalog no longer has."""
    known = catalog.DATASETS.get(dataset)
    hint = f"enqueue {dataset} again, to load it as the catalog describes it now"
    if known is None:
        return ConfigError(f"dataset {dataset!r} is no longer in the catalog",
                           dataset=dataset, hint="nothing to do: it can't be loaded any more")
    names = {layer.name for layer in known.layers}
    gone = [s.layer for s in layers.of_load(conn, load_id) if s.layer not in names]
    if not gone:
        return None
    listed = ", ".join(repr(name) for name in gone)
    return ConfigError(f"this load was planned with layer{'s' if len(gone) > 1 else ''} "
                       f"{listed}, which the catalog no longer has", dataset=dataset, hint=hint)


def _fail(conn: psycopg.Connection, load_id: int, error: ConfigError) -> None:
    with conn.transaction():
        loads.fail(conn, load_id, str(error), type(error).__name__, SWEEP)


def drop_leftovers(conn: psycopg.Connection) -> tuple[dict[str, str], list[str]]:
    """Drop the staging tables no unfinished load needs; returns those dropped (with why)
    and those left because something still uses them (the next sweep tries again)."""
    found = {left.table: left.reason for left in leftovers.leftover_staging(conn)}
    dropped = swap.drop_staged(conn, found, timeout=LEFTOVER_LOCK_TIMEOUT,
                               keep=lambda table: leftovers.staging_in_use(conn, table))
    return ({table: found[table] for table in dropped}, sorted(set(found) - set(dropped)))
