"""Cancel a run: its unfinished loads end at once as ``cancelled``; nothing else moves.

The ledger row is what every step checks first (``load.finished``), so the run's
queued messages become no-ops when they arrive, and the sweep, which only re-drives
unfinished loads, never revives one. A chunk or download in progress asks the ledger
between batches and stops at the next (:func:`service.ledger.loads.still_going`). The
staging tables are dropped here; one a chunk still writes to is left (a short lock
timeout) for that chunk, which drops it as it stops, or for the sweep. The live tables
are never touched: a publish that committed first wins, and the load stays published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from service.errors import Cancelled, UnknownRun
from service.ledger import layers, loads, runs, schema
from service.postgres import connect
from service.publish import swap
from service.settings import Settings
from service.throttle import Every

#: How long to wait for a staging table a step still holds before leaving it.
DROP_LOCK_TIMEOUT = "2s"
#: Seconds between a long step's looks at whether its load was cancelled.
CHECK_EVERY_S = 1.0


@dataclass(frozen=True)
class CancelOutcome:
    run_id: str
    #: The datasets cancelled now; empty when the run had already finished (a no-op).
    cancelled: list[str]
    #: The other datasets, with the status each had already ended with.
    ended: dict[str, str]
    dropped: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    @property
    def noop(self) -> bool:
        return not self.cancelled


def cancel(conn: psycopg.Connection, run_id: str, *, by: str = "cli") -> CancelOutcome:
    """Cancel ``run_id``'s unfinished loads and drop their staging tables; idempotent."""
    schema.ensure(conn)
    if not runs.exists(conn, run_id):
        raise UnknownRun(f"no run {run_id!r}", hint="list the runs with: geoload status")
    with conn.transaction():
        now, ended, earlier = loads.cancel(conn, run_id, f"cancelled ({by})")
        # Also what a step of a load cancelled earlier left (an index build can't stop).
        tables = [t for load_id in now for t in layers.staging_tables(conn, load_id)]
        leftover = [t for load_id in earlier for t in layers.staging_tables(conn, load_id)]
    dropped = swap.drop_staged(conn, tables + leftover, timeout=DROP_LOCK_TIMEOUT)
    return CancelOutcome(run_id, list(now.values()), ended, dropped,
                         sorted(set(tables) - set(dropped)))


def drop_cancelled(conn: psycopg.Connection, load_id: int) -> list[str]:
    """A step that stopped on a cancelled load drops the staging tables it held."""
    return swap.drop_staged(conn, layers.staging_tables(conn, load_id),
                            timeout=DROP_LOCK_TIMEOUT)


class StopWhenCancelled:
    """Asks the ledger, at most every :data:`CHECK_EVERY_S`, whether the load still goes
    on, and raises :class:`~service.errors.Cancelled` when it doesn't.

    Its own connection, opened at the first check (most chunks finish before one): the
    step's connection is busy with a COPY while it asks.
    """

    def __init__(self, settings: Settings, load_id: int, dataset: str) -> None:
        self.settings, self.load_id, self.dataset = settings, load_id, dataset
        self.due = Every(CHECK_EVERY_S)
        self.due.due()  # not at once: the step has just checked
        self.conn: psycopg.Connection | None = None

    def check(self) -> None:
        if not self.due.due():
            return
        if self.conn is None:
            self.conn = connect(self.settings, autocommit=True)
        if not loads.still_going(self.conn, self.load_id):
            raise Cancelled(f"the load of {self.dataset} ended while this step ran (its run "
                            "was cancelled)", dataset=self.dataset, hint="nothing to do")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
