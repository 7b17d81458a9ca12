"""sweep_stalled_loads: re-drive loads whose messages were lost, so that no run hangs.

Dramatiq acks a message after its middleware ran, and it swallows errors raised
there: a pipeline's next message (fetch → plan) or a retry that could not be
published while RabbitMQ blinked is then gone. Every step is idempotent, so the
cure is to send a stalled load's next messages again. A load is stalled when it
has not moved for longer than any message may take, and nothing waits in the
queue that could still move it.
"""

from __future__ import annotations

from typing import Any

import psycopg

from service import ledger
from service.messages import CHUNK, FETCH, FINISH, PLAN, PUBLISH, Next
from service.pg.connect import connect
from service.settings import Settings

#: Longer than the longest time limit (20 min) plus the longest retry backoff (5 min).
STALLED_AFTER_S = 30 * 60

STALLED = """
SELECT l.load_id, l.run_id, l.dataset, l.status
FROM geoload.loads l JOIN geoload.runs r USING (run_id)
WHERE l.status <> ALL(%(terminal)s)
  AND greatest(r.created_at, l.started_at, l.fetched_at,
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
    layers = ledger.layer_rows(conn, load_id)
    steps = [Next(CHUNK, (run_id, dataset, layer, n))
             for layer, n in ledger.pending_chunks(conn, load_id)]
    steps += [Next(FINISH, (run_id, dataset, row["layer"])) for row in layers
              if row["status"] != "ready" and row["chunks_done"] == row["chunks_total"]]
    if layers and all(row["status"] == "ready" for row in layers):
        steps.append(Next(PUBLISH, (run_id, dataset)))
    return [[step] for step in steps]


def sweep(settings: Settings, broker: Any, *, older_than_s: float = STALLED_AFTER_S,
          queued: int | None = None) -> dict[str, Any]:
    """Send stalled loads their next messages again; ``queued`` is the queue's backlog.

    A backlog means work is still on its way, which is not a stall: nothing is sent.
    """
    from service.broker import send_pipelines

    if queued:
        return {"status": "skipped", "reason": f"{queued} message(s) still queued"}
    redriven = {}
    with connect(settings, autocommit=True) as conn:
        for load_id, run_id, dataset, status in stalled_loads(conn, older_than_s):
            pipelines = next_steps(conn, load_id, run_id, dataset, status)
            send_pipelines(broker, settings, pipelines)
            redriven[f"{run_id}/{dataset}"] = {"status": status, "messages": len(pipelines)}
    return {"status": "swept", "redriven": redriven}
