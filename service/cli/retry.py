"""``geoload retry RUN_ID``: a new run of a run's failed or cancelled datasets.

The same library call as the dashboard's Retry button
(:func:`service.pipeline.start.retry`); the new run's ``retry_of`` names the first.
"""

from __future__ import annotations

import argparse
from typing import Any

import psycopg

from service import cli
from service import settings as config


def build_parser(prog: str = "geoload retry",
                 epilog: str | None = None) -> argparse.ArgumentParser:
    parser = cli.parser(prog, "Start a new run of the datasets that failed or were cancelled "
                        "in RUN_ID, linked to it (retry_of).", epilog)
    parser.add_argument("run_id", help="a run id (geoload status lists them)")
    parser.add_argument("--dataset", action="append", metavar="NAME",
                        help="only this dataset (repeatable)")
    parser.add_argument("--wait", action="store_true", help="show progress until it ends")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --wait or --local, stop waiting after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--local", action="store_true",
                        help="run it in this process (PostGIS only), as load --local")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="with --local, worker threads")
    return parser


def run(args: argparse.Namespace) -> int:
    from service.pipeline.start import Started, retry

    def begin(settings: config.Settings, conn: psycopg.Connection, broker: Any) -> Started:
        return retry(settings, conn, broker, args.run_id, datasets=args.dataset,
                     origin="local" if args.local else "cli")

    if args.local:
        from service.cli.local import run_here

        return run_here(begin, threads=args.workers, timeout=args.timeout, as_json=args.json)
    if args.workers is not None:
        raise cli.fail("--workers goes with --local", cli.EXIT_USAGE)
    from service import live
    from service.cli.enqueue import report, wait
    from service.pipeline import broker as messaging
    from service.postgres import connect

    settings = config.get()
    with connect(settings, autocommit=True) as conn:
        live.ping(settings)
        broker = messaging.make_broker(settings)
        messaging.check(broker, settings)
        started = retry(settings, conn, broker, args.run_id, datasets=args.dataset)
        report(started, args.json)
        if not args.wait:
            return cli.EXIT_OK
        return wait(conn, settings, started.run_id, args.timeout, as_json=args.json)
