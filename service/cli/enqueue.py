"""``python -m service.enqueue gadm timezone``: start a run and return its id at once.

With ``--wait`` it stays to draw progress and exits 0 only if every dataset
was published, then prints each dataset's data warnings. ``--strict`` makes any
data warning (schema drift, a feature kept without its geometry) fail the load.
``--if-changed`` first asks upstream, as the scheduled refresh does, whether the named
datasets, with the ``--countries``, ``--levels`` and ``--schema`` given, have a version
newer than the one loaded (into that schema), and enqueues only those; with no dataset
named, it checks what the scheduled refresh checks (``GEOLOAD_REFRESH_DATASETS``).
Unknown dataset names exit 2 before anything is enqueued; an unreachable PostGIS,
Redis or RabbitMQ exits 3 naming which and where.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from service import catalog, cli
from service import settings as config
from service.cli import choices

if TYPE_CHECKING:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from psycopg import Connection

    from service.catalog import Dataset
    from service.catalog.options import LoadOptions
    from service.live import Live
    from service.pipeline.start import Started


def build_parser(prog: str = "python -m service.enqueue", epilog: str | None = None,
                 description: str = "Load datasets into PostGIS through the workers."
                 ) -> argparse.ArgumentParser:
    """The enqueue options, shared by ``python -m service.enqueue`` and ``geoload load``."""
    parser = cli.parser(prog, description, epilog)
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help=f"datasets to load: {', '.join(catalog.names())}")
    parser.add_argument("--all", action="store_true", help="every dataset in the catalog")
    parser.add_argument("--wait", action="store_true",
                        help="show progress until the run ends; exit 0 only if all published")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --wait, give up waiting after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--strict", action="store_true",
                        help="fail a load on any data warning (a field missing, added or "
                             "retyped; a geometry that can't be loaded) instead of loading "
                             "it and warning")
    parser.add_argument("--if-changed", action="store_true",
                        help="ask upstream first and load only what changed: the DATASETs "
                             "named, with the --countries/--levels/--schema given, each "
                             "compared with the version loaded into that schema; with no "
                             "DATASET, what the scheduled refresh checks "
                             "(GEOLOAD_REFRESH_DATASETS)")
    parser.add_argument("--rollback", metavar="DATASET", default=None,
                        help="put the previous kept version of DATASET back (in --schema if "
                             "given), atomically; needs GEOLOAD_KEEP_VERSIONS")
    choices.add_arguments(parser)
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse(argv))


def chosen(args: argparse.Namespace) -> list[Dataset]:
    """The datasets the arguments name; a usage error if none. ``--if-changed`` alone
    names none here: it checks what :func:`service.pipeline.refresh.by_hand` gives."""
    names = catalog.names() if args.all else args.datasets
    if not names and not args.if_changed:
        raise cli.fail(f"name at least one dataset ({', '.join(catalog.names())}) or --all",
                       cli.EXIT_USAGE)
    return catalog.resolve(names) if names else []


def run(args: argparse.Namespace) -> int:
    """Enqueue what ``args`` (from :func:`build_parser`) asks for, through RabbitMQ."""
    if args.rollback:
        return _rollback(args)
    datasets = chosen(args)
    settings = config.get()
    if args.if_changed:
        _check_if_changed_choices(args, datasets)
    options = choices.options(args, datasets, settings)
    from service import live
    from service.pipeline import broker as messaging
    from service.pipeline.start import start
    from service.postgres import connect

    with connect(settings, autocommit=True) as conn:
        live.ping(settings)
        broker = messaging.make_broker(settings)
        messaging.check(broker, settings)
        if args.if_changed:
            return _if_changed(settings, conn, broker, datasets, options, args)
        started = start(settings, conn, broker, datasets, strict=args.strict, options=options)
        report(started, args.json)
        if not args.wait:
            return cli.EXIT_OK
        return wait(conn, settings, started.run_id, args.timeout, as_json=args.json)


def _rollback(args: argparse.Namespace) -> int:
    """``--rollback gadm``: the swap back runs here, in one transaction; no worker needed."""
    from dataclasses import asdict

    from service.catalog.options import resolve
    from service.pipeline.versions import rollback
    from service.postgres import connect

    ds = catalog.get(args.rollback)
    settings = config.get()
    target = resolve(ds, settings, schema=args.schema).schema or ""
    with connect(settings, autocommit=True) as conn:
        done = rollback(conn, ds, target)
    if args.json:
        print(json.dumps(asdict(done)), flush=True)
    else:
        print(f"run {done.run_id}: {done.dataset} rolled back to the version load "
              f"{done.restored_load} published (release {done.release or '—'}): "
              f"{', '.join(done.tables)}", flush=True)
    return cli.EXIT_OK


def _check_if_changed_choices(args: argparse.Namespace, datasets: list[Dataset]) -> None:
    """Choices that ``--if-changed`` can't honour are usage errors, not dropped."""
    if args.source:
        raise cli.fail("--if-changed asks upstream for a new version, and --source has no "
                       "upstream: load your file without --if-changed", cli.EXIT_USAGE)
    if not datasets and (args.countries or args.levels or args.schema):
        raise cli.fail("--if-changed with --countries, --levels or --schema: name the dataset "
                       "they are for, e.g. --if-changed gadm --levels 0-2", cli.EXIT_USAGE)


def _if_changed(settings: config.Settings, conn: Connection, broker: RabbitmqBroker,
                datasets: list[Dataset], options: dict[str, LoadOptions],
                args: argparse.Namespace) -> int:
    """The scheduler's check, by hand: exit 1 if upstream could not be asked about a dataset."""
    from service.pipeline import refresh

    outcome = refresh.refresh(settings, conn, broker,
                              refresh.by_hand(settings, conn, datasets, options),
                              origin="cli", strict=args.strict)
    if args.json:
        print(json.dumps(outcome.as_json()), flush=True)
    out = sys.stderr if args.json else sys.stdout
    for d in outcome.decisions:
        run = f" (run {d.run_id})" if d.run_id else ""
        print(f"{d.dataset}: {d.action}{run}: {d.reason}",
              file=sys.stderr if d.action == refresh.ERROR else out, flush=True)
    code = cli.EXIT_FAILED if any(d.action == refresh.ERROR for d in outcome.decisions) \
        else cli.EXIT_OK
    if outcome.run_id is None:
        return code
    if not args.wait:
        print(f"follow it: python -m service.status {outcome.run_id}", file=sys.stderr)
        return code
    return max(code, wait(conn, settings, outcome.run_id, args.timeout, as_json=args.json))


def report(started: Started, as_json: bool) -> None:
    from dataclasses import asdict

    data = asdict(started)
    if as_json:
        print(json.dumps(data), flush=True)
        return
    print(f"run {data['run_id']}: {', '.join(data['datasets'])}", flush=True)
    for name, ids in zip(data["datasets"], data["message_ids"]):
        print(f"  {name}: messages {' → '.join(ids)}", flush=True)
    print(f"follow it: python -m service.status {data['run_id']}", flush=True)


def wait(conn: Connection, settings: config.Settings, run_id: str, timeout: float | None,
         *, as_json: bool = False, live: Live | None = None) -> int:
    """Draw progress until the run ends; the exit code says whether all was published.

    ``live``: where in-flight progress is (default: Redis).
    """
    from service.cli import progress
    from service.data_warnings import line
    from service.ledger.status import Poller, superseded
    from service.live import Live

    poll = Poller(settings, live or Live(settings), run_id, conn)
    final = progress.watch(poll, timeout=timeout)
    if final is None:
        raise cli.fail(f"run {run_id} disappeared", cli.EXIT_FAILED)
    if as_json:
        print(json.dumps(final.as_json(), default=str), flush=True)
    for dataset in final.datasets:
        for warning in dataset.warnings:
            print(f"geoload: {dataset.dataset} warning: {line(warning)}", file=sys.stderr)
        if dataset.status == "failed":
            print(f"geoload: {dataset.dataset} failed at {dataset.error_step}: {dataset.error}",
                  file=sys.stderr)
        elif dataset.status == "superseded":
            print(f"geoload: {dataset.dataset} {superseded(dataset)}", file=sys.stderr)
        elif dataset.status == "cancelled":
            print(f"geoload: {dataset.dataset} cancelled; the live tables are as they were",
                  file=sys.stderr)
    if not final.finished:
        print(f"geoload: run {run_id} still {final.status} after {timeout}s", file=sys.stderr)
        return cli.EXIT_FAILED
    print(f"run {run_id} {final.status}", file=sys.stderr)
    return cli.EXIT_OK if final.status == "succeeded" else cli.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(cli.run(main))
