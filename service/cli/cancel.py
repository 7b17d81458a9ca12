"""``geoload cancel RUN_ID``: stop a run now; its live tables stay as they are.

Thin over :func:`service.pipeline.cancel.cancel`; needs PostGIS only (the run's queued
messages find their load cancelled and do nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from service import cli
from service import settings as config
from service.errors import UnknownRun
from service.pipeline.cancel import cancel
from service.postgres import connect


def build_parser(prog: str = "geoload cancel",
                 epilog: str | None = None) -> argparse.ArgumentParser:
    parser = cli.parser(prog, "Cancel a run: its unfinished loads end as cancelled at once, "
                        "their staging tables are dropped, the live tables are untouched. "
                        "Cancelling a finished run changes nothing.", epilog)
    parser.add_argument("run_id", help="a run id (geoload status lists them)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def run(args: argparse.Namespace) -> int:
    with connect(config.get(), autocommit=True) as conn:
        try:
            outcome = cancel(conn, args.run_id, by="cli")
        except UnknownRun as exc:
            raise cli.fail(str(exc), cli.EXIT_USAGE) from exc
    if args.json:
        print(json.dumps({**asdict(outcome), "noop": outcome.noop}))
        return cli.EXIT_OK
    ended = ", ".join(f"{name} {status}" for name, status in outcome.ended.items())
    if outcome.noop:
        print(f"run {args.run_id} had already finished ({ended}): nothing to cancel")
        return cli.EXIT_OK
    print(f"run {args.run_id}: cancelled {', '.join(outcome.cancelled)}"
          + (f"; already ended: {ended}" if ended else ""))
    if outcome.left:
        print(f"  staging tables still in use, dropped by the step as it stops or by the "
              f"sweep: {', '.join(outcome.left)}", file=sys.stderr)
    return cli.EXIT_OK
