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

from service import catalog, ledger
from service.errors import ConfigError
from service.load.names import STAGING
from service.messages import FETCH, PLAN, SWEEP, Next
from service.postgres import connect
from service.publish import swap as publish
from service.settings import Settings
from service.steps import moves_on

log = logging.getLogger(__name__)
#: Longer than the longest time limit (20 min) plus the longest retry backoff (5 min).
STALLED_AFTER_S = 30 * 60
#: How long the sweep waits for a leftover table something still uses, before leaving it.
LEFTOVER_LOCK_TIMEOUT = "1s"

STALLED = """
SELECT l.load_id, l.run_id, l.dataset, l.status
FROM geoload.loads l JOIN geoload.runs r USING (run_id)
WHERE l.status <> ALL(%(terminal)s)
  AND greatest(r.created_at, l.started_at, l.fetched_at, l.download_at,
               (SELECT max(greatest(c.started_at, c.finished_at)) FROM geoload.chunks c
                WHERE c.load_id = l.load_id))
      < clock_timestamp() - make_interval(secs => %(seconds)s)
"""


def stalled_loads(conn: psycopg.Connection, older_than_s: float) -> list[tuple[Any, ...]]:
    return conn.execute(STALLED, {"terminal": list(ledger.TERMINAL),
                                  "seconds": older_than_s}).fetchall()


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
    from service.broker import send_pipelines

    redriven, failed = {}, {}
    for load_id, run_id, dataset, status in stalled_loads(conn, older_than_s):
        key = f"{run_id}/{dataset}"
        outdated = outdated_plan(conn, load_id, dataset)
        if outdated is not None:
            _fail(conn, load_id, outdated)
            failed[key] = {"status": status, "error": str(outdated)}
            continue
        pipelines = next_steps(conn, load_id, run_id, dataset, status)
        send_pipelines(broker, settings, pipelines)
        redriven[key] = {"status": status, "messages": len(pipelines)}
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
    gone = [row["layer"] for row in ledger.layer_rows(conn, load_id) if row["layer"] not in names]
    if not gone:
        return None
    listed = ", ".join(repr(name) for name in gone)
    return ConfigError(f"this load was planned with layer{'s' if len(gone) > 1 else ''} "
                       f"{listed}, which the catalog no longer has", dataset=dataset, hint=hint)


def _fail(conn: psycopg.Connection, load_id: int, error: ConfigError) -> None:
    with conn.transaction():
        ledger.fail_load(conn, load_id, str(error), type(error).__name__, SWEEP)


def drop_leftovers(conn: psycopg.Connection) -> tuple[dict[str, str], list[str]]:
    """Drop the staging tables no unfinished load needs; returns those dropped (with why)
    and those left because something still uses them (the next sweep tries again)."""
    leftovers = {found.table: found.reason for found in ledger.leftover_staging(conn)}
    dropped = publish.drop_staged(conn, leftovers, timeout=LEFTOVER_LOCK_TIMEOUT,
                                  keep=lambda table: ledger.staging_in_use(conn, table))
    return ({table: leftovers[table] for table in dropped},
            sorted(set(leftovers) - set(dropped)))
