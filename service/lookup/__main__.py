"""``python -m service.lookup LAT LON [--json]`` or ``--csv FILE``: areas at points.

Exit codes: 0 answered (a point in no area is an answer: empty), 2 usage (lat/lon out of
bounds or not numbers, a CSV without ``lat`` and ``lon`` columns), 3 PostGIS unreachable.
``--csv -`` reads standard input; the CSV written to standard output has one row per
input point, in input order.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from itertools import islice
from typing import TextIO

import psycopg

from service import cli
from service import settings as config
from service.lookup import output
from service.lookup.build import registered
from service.lookup.coverage import unindexed
from service.lookup.model import Answer, BadPoint
from service.lookup.query import BATCH, check_point, lookup, lookup_many
from service.postgres import connect


def build_parser(prog: str = "python -m service.lookup",
                 epilog: str | None = None) -> argparse.ArgumentParser:
    p = cli.parser(prog, "Which time zone and admin areas is a point in? Answers from the "
                         "lookup tables published with each load.", epilog)
    p.add_argument("lat", nargs="?", help="latitude in degrees, -90 to 90")
    p.add_argument("lon", nargs="?", help="longitude in degrees, -180 to 180")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--csv", metavar="FILE",
                   help="look up every lat,lon row of FILE ('-': stdin); CSV out, input order")
    return p


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if (args.csv is None) == (args.lat is None or args.lon is None):
        raise cli.fail("give LAT LON, or --csv FILE (not both)", cli.EXIT_USAGE)
    try:
        if args.csv is None:
            lat, lon = check_point(args.lat, args.lon)
            with connect(config.get(), autocommit=True) as conn:
                answer = lookup(conn, lat, lon)
            print(output.as_json(answer) if args.json else output.text(answer))
            return cli.EXIT_OK
        return _csv(args.csv)
    except BadPoint as exc:
        raise cli.fail(str(exc), cli.EXIT_USAGE) from exc


def _csv(path: str) -> int:
    if path == "-":
        return _csv_stream(sys.stdin, path)
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            return _csv_stream(stream, path)
    except OSError as exc:
        raise BadPoint(f"can't read {path}: {exc.strerror}",
                       hint="give the path of a CSV file with a lat,lon header") from exc


def _csv_stream(stream: TextIO, path: str) -> int:
    """The CSV on standard output; a live dataset no lookup table covers is named on
    standard error (its columns are missing from the CSV)."""
    points = output.read_points(stream, file=path)
    with connect(config.get(), autocommit=True) as conn:
        tables = registered(conn)
        output.write_csv(sys.stdout, _answers(conn, points), output.csv_columns(tables))
        for missing in unindexed(conn, tables):
            print(f"note: {missing.advice()}", file=sys.stderr)
    return cli.EXIT_OK


def _answers(conn: psycopg.Connection, points: Iterator[tuple[float, float]]
             ) -> Iterator[Answer]:
    """Answers streamed :data:`BATCH` points at a time: memory holds one batch."""
    while batch := list(islice(points, BATCH)):
        yield from lookup_many(conn, batch)


if __name__ == "__main__":
    sys.exit(cli.run(main))
