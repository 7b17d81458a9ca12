"""``python -m service.enqueue gadm timezone``: start a run and return its id at once.

With ``--wait`` it stays to draw progress and exits 0 only if every dataset
was published. Unknown dataset names exit 2 before anything is enqueued; an
unreachable PostGIS, Redis or RabbitMQ exits 3 naming which and where.
"""

from __future__ import annotations

import argparse
import json
import sys

from service import catalog, cli
from service import settings as config


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m service.enqueue",
                                     description="Load datasets into PostGIS through the workers.")
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help=f"datasets to load: {', '.join(catalog.names())}")
    parser.add_argument("--all", action="store_true", help="every dataset in the catalog")
    parser.add_argument("--wait", action="store_true",
                        help="show progress until the run ends; exit 0 only if all published")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --wait, give up waiting after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    names = catalog.names() if args.all else args.datasets
    if not names:
        raise cli.fail(f"name at least one dataset ({', '.join(catalog.names())}) or --all",
                       cli.EXIT_USAGE)
    datasets = catalog.resolve(names)
    settings = config.get()
    from service import broker as messaging
    from service import live, runs
    from service.pg import schema
    from service.pg.connect import connect

    with connect(settings, autocommit=True) as conn:
        live.ping(settings)
        broker = messaging.make_broker(settings)
        messaging.check(broker, settings)
        schema.ensure(conn)
        started = runs.start(settings, conn, broker, datasets)
        _report(started, args.json)
        if not args.wait:
            return cli.EXIT_OK
        return wait(conn, settings, started.run_id, args.timeout, as_json=args.json)


def _report(started: object, as_json: bool) -> None:
    from dataclasses import asdict

    data = asdict(started)  # type: ignore[call-overload]
    if as_json:
        print(json.dumps(data), flush=True)
        return
    print(f"run {data['run_id']}: {', '.join(data['datasets'])}", flush=True)
    for name, ids in zip(data["datasets"], data["message_ids"]):
        print(f"  {name}: messages {' → '.join(ids)}", flush=True)
    print(f"follow it: python -m service.status {data['run_id']}", flush=True)


def wait(conn: object, settings: config.Settings, run_id: str, timeout: float | None,
         *, as_json: bool = False) -> int:
    """Draw progress until the run ends; the exit code says whether all was published."""
    from service import progress, runs
    from service.live import Live

    live = Live(settings)
    final = progress.watch(lambda: runs.status(conn, live, run_id),  # type: ignore[arg-type]
                           timeout=timeout)
    if final is None:
        raise cli.fail(f"run {run_id} disappeared", cli.EXIT_FAILED)
    if as_json:
        print(json.dumps(final.as_json(), default=str), flush=True)
    for dataset in final.datasets:
        if dataset.status == "failed":
            print(f"geoload: {dataset.dataset} failed at {dataset.error_step}: {dataset.error}",
                  file=sys.stderr)
    if not final.finished:
        print(f"geoload: run {run_id} still {final.status} after {timeout}s", file=sys.stderr)
        return cli.EXIT_FAILED
    print(f"run {run_id} {final.status}", file=sys.stderr)
    return cli.EXIT_OK if final.status == "succeeded" else cli.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(cli.run(main))
