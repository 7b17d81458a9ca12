"""``geoload``: one command for everything, each subcommand a thin face of the library.

``geoload load`` takes exactly what ``python -m service.enqueue`` takes (the same parser,
:func:`service.cli.enqueue.build_parser`), plus ``--local`` to run the pipeline in this
process (:mod:`service.cli.local`). ``status`` and ``datasets`` reuse their modules'
parsers too; ``worker``, ``scheduler`` and ``dashboard`` exec the Procfile's commands
(:mod:`service.cli.launch`); ``lookup`` reuses its module's parser, and ``bench`` runs the
benchmark of the checkout it finds (:mod:`service.cli.bench`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from service import cli
from service.errors import ServiceUnavailable


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    examples: str
    run: Callable[[str, str, list[str]], int]  # (name, prog, argv) -> exit code


def _parser(build: Callable[..., argparse.ArgumentParser], command: Command,
            prog: str) -> argparse.ArgumentParser:
    return build(prog=prog, epilog="examples:\n" + command.examples)


def _load(name: str, prog: str, argv: list[str]) -> int:
    from service.cli import enqueue

    parser = _parser(enqueue.build_parser, COMMANDS[name], prog)
    parser.description = ("Load datasets into PostGIS: through the workers, or with --local "
                          "in this process (PostGIS only).")
    group = parser.add_argument_group("in this process, without RabbitMQ and Redis")
    group.add_argument("--local", action="store_true",
                       help="run the pipeline here with Dramatiq's in-memory broker; "
                            "progress on the terminal, history in PostGIS")
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="with --local, worker threads (default GEOLOAD_WORKER_THREADS)")
    args = parser.parse_args(argv)
    if args.workers is not None and not args.local:
        raise cli.fail("--workers goes with --local (workers of the full stack: geoload "
                       "worker --processes N)", cli.EXIT_USAGE)
    if args.local:
        from service.cli import local as local_run

        return local_run.run(args)
    try:
        return enqueue.run(args)
    except ServiceUnavailable as exc:
        if exc.service in ("RabbitMQ", "Redis"):
            exc.hint = (f"{exc.hint}; or load in this process, with PostGIS only: "
                        f"geoload load {' '.join(argv)} --local")
        raise


def _status(name: str, prog: str, argv: list[str]) -> int:
    from service.cli import status

    return status.run(_parser(status.build_parser, COMMANDS[name], prog).parse_args(argv))


def _datasets(name: str, prog: str, argv: list[str]) -> int:
    from service.cli import datasets

    return datasets.run(_parser(datasets.build_parser, COMMANDS[name], prog).parse_args(argv))


def _cancel(name: str, prog: str, argv: list[str]) -> int:
    from service.cli import cancel

    return cancel.run(_parser(cancel.build_parser, COMMANDS[name], prog).parse_args(argv))


def _retry(name: str, prog: str, argv: list[str]) -> int:
    from service.cli import retry

    return retry.run(_parser(retry.build_parser, COMMANDS[name], prog).parse_args(argv))


def _settings(name: str, prog: str, argv: list[str]) -> int:
    from service.cli import effective

    return effective.run(_parser(effective.build_parser, COMMANDS[name], prog).parse_args(argv))


def _launch(name: str, prog: str, argv: list[str]) -> int:
    from service import settings as config
    from service.cli import launch

    parser = argparse.ArgumentParser(
        prog=prog, description=COMMANDS[name].help + " (the Procfile's command, exec'd).",
        epilog="examples:\n" + COMMANDS[name].examples,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if name == "worker":
        parser.add_argument("--processes", type=int, help="default GEOLOAD_WORKER_PROCESSES")
        parser.add_argument("--threads", type=int, help="default GEOLOAD_WORKER_THREADS")
    parser.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    args = parser.parse_args(argv)
    found = launch.command(name, config.get(), processes=getattr(args, "processes", None),
                           threads=getattr(args, "threads", None))
    if args.dry_run:
        print(" ".join([*(f"{k}={v}" for k, v in found.env.items()), *found.argv]))
        return cli.EXIT_OK
    launch.exec_role(found)
    return cli.EXIT_FAILED  # not reached


def _lookup(name: str, prog: str, argv: list[str]) -> int:
    from service.lookup import __main__ as lookup_cli

    return lookup_cli.run(_parser(lookup_cli.build_parser, COMMANDS[name], prog).parse_args(argv))


def _bench(name: str, prog: str, argv: list[str]) -> int:
    from service.cli import bench

    return bench.run(argv, prog, "examples:\n" + COMMANDS[name].examples)


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("load", "load datasets into PostGIS", """\
  geoload load gadm timezone --local       # in this process: needs PostGIS only
  geoload load timezone --local --workers 4
  geoload load gadm timezone --wait        # through RabbitMQ and the workers
  geoload load --if-changed                # what the scheduler checks, if upstream changed
  geoload load --if-changed gadm --levels 0-2 --schema mine   # that choice, if changed
  geoload load gadm --countries NPL,DZA --levels 0-2 --schema mine
  geoload load timezone --source /shared/zones.zip   # a file of your own (path or URL)
  geoload load --rollback gadm             # the previous kept version back
""", _load),
    Command("status", "recent runs, or where one stands", """\
  geoload status                           # recent runs
  geoload status 20261202T061500-3f9a1c --wait
""", _status),
    Command("datasets", "the catalog: names, sources, layers, licence", """\
  geoload datasets
  geoload datasets --json
""", _datasets),
    Command("cancel", "cancel a run: its loads stop, live tables stay", """\
  geoload cancel 20261202T061500-3f9a1c
""", _cancel),
    Command("retry", "a new run of a run's failed or cancelled datasets", """\
  geoload retry 20261202T061500-3f9a1c
  geoload retry 20261202T061500-3f9a1c --local
""", _retry),
    Command("worker", "run Dramatiq workers", """\
  geoload worker                           # GEOLOAD_WORKER_PROCESSES x _THREADS
  geoload worker --processes 4 --threads 2
""", _launch),
    Command("scheduler", "run the scheduler: refresh and sweep (exactly one)", """\
  geoload scheduler
  geoload scheduler --dry-run              # print the command
""", _launch),
    Command("dashboard", "serve the dashboard", """\
  geoload dashboard                        # http://127.0.0.1:8181/
""", _launch),
    Command("lookup", "which time zone and admin areas a point is in", """\
  geoload lookup 47.6964 8.6903            # lat lon: Büsingen's zone and areas
  geoload lookup 47.6964 8.6903 --json
  geoload lookup --csv points.csv > out.csv   # header lat,lon; one row per point
""", _lookup),
    Command("bench", "geoload against ogr2ogr and a raw COPY (from a checkout)", """\
  geoload bench                            # both datasets, GADM's density, 3 rounds
  geoload bench timezone --size tiny --runs 1 --no-peers   # a quick look
  geoload bench --gadm gadm_410-levels.zip --timezone timezones.shapefile.zip
  geoload bench --runs 5 --json bench.json # the table as JSON too
""", _bench),
    Command("settings", "every setting, its value and where it came from", """\
  geoload settings
  geoload settings --json
""", _settings),
)}

EPILOG = """\
examples:
  geoload load gadm timezone --local       # one command, needs only PostGIS
  geoload load gadm timezone --wait        # the full stack: RabbitMQ, Redis, workers
  geoload status
  geoload cancel RUN_ID && geoload retry RUN_ID
  geoload settings

'geoload COMMAND --help' shows a command's options and examples.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geoload", description="Load GADM and time zone boundaries into PostGIS.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        # Each command parses its own arguments: this parser only names and lists them.
        sub.add_parser(command.name, help=command.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv[:1])  # --help, or a usage error naming the commands
        return cli.EXIT_USAGE
    command = COMMANDS[argv[0]]
    return command.run(command.name, f"geoload {command.name}", argv[1:])


def entry() -> int:
    """The console script: expected errors are one line and an exit code."""
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(entry())
