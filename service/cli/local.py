"""``geoload load ... --local``: the whole pipeline in this process, with PostGIS only.

The same actors, steps and ledger as with workers (:mod:`service.pipeline.local` binds
them to Dramatiq's in-memory broker); progress is drawn on the terminal from the
ledger and the in-memory live state. The messages live in this process only, so a run
it leaves unfinished (a timeout, Ctrl-C) is cancelled on the way out: its staging
tables are dropped and the live tables keep their version.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from service import cli
from service import settings as config
from service.pipeline.start import Started

#: (settings, connection, broker) → the run it started.
Begin = Callable[[config.Settings, psycopg.Connection, Any], Started]


def run(args: argparse.Namespace) -> int:
    """``geoload load --local``: the datasets ``args`` names (see enqueue's parser)."""
    from service.cli import choices
    from service.cli.enqueue import chosen
    from service.pipeline.start import start

    if args.rollback:  # a swap in PostGIS: no broker either way
        from service.cli.enqueue import run as enqueue_run

        return enqueue_run(args)
    if args.if_changed:
        raise cli.fail("--if-changed is for the scheduler's stack; with --local, name the "
                       "datasets to load", cli.EXIT_USAGE)
    datasets = chosen(args)
    options = choices.options(args, datasets, config.get())
    return run_here(lambda settings, conn, broker: start(
        settings, conn, broker, datasets, origin="local", strict=args.strict, options=options),
        threads=args.workers, timeout=args.timeout, as_json=args.json)


class _OneLine(logging.Filter):
    """A failed attempt is one line on the terminal, not a traceback: the run's outcome
    (and each failure, with its step) is printed when it ends, and kept in the ledger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]}"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def _quiet_worker_logs() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("geoload: %(levelname)s %(message)s"))
    handler.addFilter(_OneLine())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("dramatiq").setLevel(logging.WARNING)


def _stop_on_sigterm() -> None:
    """SIGTERM (``timeout``, a supervisor) ends the run as Ctrl-C does: cancelled, cleaned."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _cancel_abandoned(conn: psycopg.Connection) -> None:
    """Cancel the ``--local`` runs whose process died without ending them (``kill -9``):
    no sweep re-drives them, since their messages died with it. A run still going in
    another process moves more often than the sweep's stall limit, so it is left alone."""
    from service.ledger import loads, runs
    from service.pipeline.cancel import cancel
    from service.pipeline.sweep import STALLED_AFTER_S

    gone = {s.run_id for s in loads.stalled(conn, STALLED_AFTER_S)
            if runs.origin(conn, s.run_id) == "local"}
    for run_id in sorted(gone):
        cancel(conn, run_id, by="its --local process was gone")
        print(f"geoload: cancelled run {run_id}, a --local run whose process was gone",
              file=sys.stderr)


def run_here(begin: Begin, *, threads: int | None = None, timeout: float | None = None,
             as_json: bool = False) -> int:
    """Start a run with ``begin`` on the in-memory broker and work it off with ``threads``
    worker threads, drawing progress; the exit code says whether all was published."""
    from service.cli.enqueue import wait
    from service.ledger import schema
    from service.pipeline import local
    from service.pipeline.cancel import cancel
    from service.postgres import connect

    settings = config.get()
    threads = threads or settings.worker_threads
    if threads < 1:
        raise cli.fail("--workers must be at least 1", cli.EXIT_USAGE)
    _quiet_worker_logs()
    _stop_on_sigterm()
    with connect(settings, autocommit=True) as conn:
        schema.ensure(conn)
        here = local.install(settings)
        import actors  # noqa: F401 - binds the actors to the in-memory broker

        _cancel_abandoned(conn)
        worker = local.worker(here, threads)
        started: Started | None = None
        code = cli.EXIT_FAILED
        try:
            started = begin(settings, conn, here.broker)
            print(f"run {started.run_id}: {', '.join(started.datasets)} in this process "
                  f"({threads} worker thread{'s' if threads > 1 else ''})",
                  file=sys.stderr if as_json else sys.stdout, flush=True)
            code = wait(conn, settings, started.run_id, timeout, as_json=as_json,
                        live=here.live)
        finally:
            if started is not None:
                outcome = cancel(conn, started.run_id, by="local run ended")
                if outcome.cancelled:
                    print(f"geoload: cancelled {', '.join(outcome.cancelled)} (the run ended "
                          "with this process)", file=sys.stderr)
            worker.stop()
    return code
