"""``python -m service.status [RUN_ID]``: where a run stands, any time later.

Without a run id it lists recent runs. ``--json`` prints the same data the
dashboard's API serves; ``--wait`` follows the run like ``enqueue --wait``;
``--changes`` prints what each dataset's new release changed (added, removed,
renamed and reshaped keys), or that it was a first load.
"""

from __future__ import annotations

import argparse
import json
import sys

import psycopg

from service import changes, cli
from service import settings as config
from service.changes import ChangeReport
from service.data_warnings import line
from service.ledger import changes as stored_changes
from service.ledger import runs, schema
from service.ledger.status import RunStatus, run_status, superseded
from service.live import Live
from service.postgres import connect


def build_parser(prog: str = "python -m service.status",
                 epilog: str | None = None) -> argparse.ArgumentParser:
    """The status options, shared by ``python -m service.status`` and ``geoload status``."""
    parser = cli.parser(prog, "Show a run's progress and outcome.", epilog)
    parser.add_argument("run_id", nargs="?", help="a run id printed by enqueue")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--wait", action="store_true", help="follow the run until it ends")
    parser.add_argument("--changes", action="store_true",
                        help="what each published dataset's new release changed (by key)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    settings = config.get()
    with connect(settings, autocommit=True) as conn:
        schema.ensure(conn)
        if args.run_id is None:
            return _list(conn, Live(settings), args.json)
        if args.wait:
            from service.cli.enqueue import wait

            return wait(conn, settings, args.run_id, None, as_json=args.json)
        found = run_status(conn, Live(settings), args.run_id)
        reports = stored_changes.of_run(conn, args.run_id) if args.changes else None
    if found is None:
        raise cli.fail(f"no run {args.run_id!r}; list runs with: python -m service.status",
                       cli.EXIT_USAGE)
    if reports is not None:
        print(json.dumps({d: r and r.to_json() for d, r in reports.items()}, indent=2)
              if args.json else render_changes(reports))
    else:
        print(json.dumps(found.as_json(), default=str, indent=2) if args.json else render(found))
    return cli.EXIT_OK if found.status != "failed" else cli.EXIT_FAILED


def _list(conn: psycopg.Connection, live: Live, as_json: bool) -> int:
    found = [run_status(conn, live, run_id) for run_id in runs.recent(conn)]
    rows = [r for r in found if r is not None]
    if as_json:
        print(json.dumps([r.as_json() for r in rows], default=str, indent=2))
        return cli.EXIT_OK
    for run in rows:
        names = ", ".join(d.dataset for d in run.datasets)
        print(f"{run.run_id}  {run.status:<9}  {run.created_at:%Y-%m-%d %H:%M:%S}  {names}")
    return cli.EXIT_OK


def render_changes(reports: dict[str, ChangeReport | None]) -> str:
    """Per dataset of the run, its change report, or why there is none."""
    return "\n".join(changes.text(report) if report is not None
                     else f"{dataset}: not published in this run, no change report"
                     for dataset, report in reports.items())


def render(run: RunStatus) -> str:
    """A person's view of a run: per dataset and layer, loaded of total, and its warnings."""
    lines = [f"run {run.run_id}: {run.status} (started {run.created_at:%Y-%m-%d %H:%M:%S})"]
    for d in run.datasets:
        lines.append(f"  {d.dataset:<10} {d.status:<10} {d.loaded:>9,} / {d.total:,} features"
                     + (f"  release {d.release}" if d.release else "")
                     + ("  strict" if d.strict else "")
                     + (f"  {d.options}" if d.options else ""))
        if d.error:
            lines.append(f"    error ({d.error_step}): {d.error}")
        if d.superseded_by:
            lines.append(f"    {superseded(d)}")
        lines += [f"    warning {line(w)}" for w in d.warnings]
        for layer in d.layers:
            lines.append(f"    {layer.table:<22} {layer.status:<8} {layer.loaded:>9,} / "
                         f"{layer.source:,}  chunks {layer.chunks_done}/{layer.chunks_total}"
                         f"  repaired {layer.repaired}  empty {layer.empty}"
                         f"  dropped {layer.dropped}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(cli.run(main))
