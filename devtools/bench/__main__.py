"""``python -m devtools.bench``: see :mod:`devtools.bench`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from devtools.bench import data, memory, options, peers, profile, report, runner
from devtools.testdata.server import serve
from service import catalog, cli
from service import settings as config
from service.fetch.mirror import source_url
from service.ledger import runs as run_ledger
from service.postgres import connect
from service.settings import Settings


def parse(argv: list[str] | None) -> argparse.Namespace:
    return options.build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    base = config.get()
    settings = runner.bench_settings(base, args.database)
    work = peers.scratch()
    root = args.data or base.cache_dir / "bench-data"
    data.assemble(root, settings, args.size, {"gadm": args.gadm, "timezone": args.timezone})
    rows: list[report.Row] = []
    notes: list[str] = []
    profiles: list[dict[str, Any]] = []
    try:
        with serve(root) as server:
            settings = replace(settings, mirror=server.url)
            for dataset in args.datasets:
                rows += bench_dataset(settings, dataset, args, root, work)
                if args.profile:
                    profiles.append(profile.profile_once(settings, dataset, args.workers,
                                                         args.threads, work))
                if args.memory:
                    one = next(r for r in rows
                               if r.dataset == dataset and r.way == "geoload 1 worker")
                    row, note = memory.scaling(settings, dataset, args.size, args.threads,
                                               work, one)
                    rows.append(row)
                    notes.append(note)
            rows.append(enqueue_row(settings, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes += speedups(rows, args.workers)
    notes.append(f"{args.runs} rounds, each running every way once; ratios are medians of "
                 f"the rounds' own ratios; {os.cpu_count()} CPUs; worker processes run "
                 f"{args.threads} threads each; geoload's time includes the download from "
                 "127.0.0.1, extraction and the atomic swap.")
    entries = report.table(rows)
    print(report.render(entries, notes))
    for found in profiles:
        print("\n" + profile.render(found))
    if args.json:
        args.json.write_text(json.dumps({"rows": entries, "notes": notes,
                                         "profiles": profiles}, indent=2))
    return cli.EXIT_OK


def bench_dataset(settings: Settings, dataset: str, args: argparse.Namespace, root: Path,
                  work: Path) -> list[report.Row]:
    """Every way once per round, round after round, so that a machine that slows down
    mid-benchmark slows every way alike: ratios are taken within a round."""
    ours = {(n, False): report.Row(dataset, geoload_way(n))
            for n in dict.fromkeys((1, args.workers))}
    # ogr2ogr and the peers build no lookup table: geoload's rows above are loads without
    # one (GEOLOAD_LOOKUP=0), and this row is the same load with its lookup table cut.
    ours[(args.workers, True)] = report.Row(dataset, geoload_way(args.workers) + " + lookup")
    archive = data.local_file(root, dataset, settings)
    source = peers.ogr2ogr_source(archive, dataset, settings, work)
    job = peers.Job(dataset, archive, source_url(catalog.get(dataset), settings), source,
                    settings, work)
    others = [] if args.no_peers else [(p, report.Row(dataset, p.way, note=p.missing()))
                                       for p in peers.OTHERS if p.applies(job)]
    ogr = (report.Row(dataset, "ogr2ogr", note=peers.OGR2OGR.missing())
           if not args.no_ogr2ogr else None)
    validity = report.Row(dataset, peers.VALIDATION_WAY)
    floor = report.Row(dataset, "raw binary COPY")
    dumps: dict[str, Path] = {}
    expected: dict[str, int] = {}
    for _ in range(args.runs):
        for (processes, lookup), row in ours.items():
            timed = runner.geoload_once(settings, dataset, processes, args.threads, work,
                                        env={"GEOLOAD_LOOKUP": "1" if lookup else "0"})
            row.add(timed.seconds, timed.cpu, timed.own_cpu)
            row.peak_rss = max(row.peak_rss or 0, timed.peak_rss)
            print(f"  {dataset} {row.way}: {timed.seconds:.2f} s, peak RSS "
                  f"{timed.peak_rss / 2**20:.0f} MB", file=sys.stderr, flush=True)
        expected = expected or peers.expected_counts(dataset, settings)
        if ogr:
            run_peer(peers.OGR2OGR, ogr, job, expected)
        for peer, row in others:
            run_peer(peer, row, job, expected)
        validity.add(peers.validation_seconds(source))
        dumps = dumps or peers.dump_final_rows(dataset, settings, work)
        floor.add(*peers.run_copy_floor(dumps, settings))
    return [*ours.values(), *([ogr] if ogr else []), *(row for _, row in others), validity,
            floor]


def geoload_way(workers: int) -> str:
    return f"geoload {workers} worker" + ("s" if workers > 1 else "")


def run_peer(peer: peers.Peer, row: report.Row, job: peers.Job, expected: dict[str, int]) -> None:
    """One run of ``peer``, verified against geoload's result; a failure ends its runs and
    is noted in its row, a skipped peer is not run."""
    if row.note:
        return
    try:
        seconds, cpu, own = peer.run(job)
        peers.verify(job.settings, peer.schema, expected)
    except Exception as exc:  # noqa: BLE001 - any failure is the row's note
        row.note = f"failed: {describe(exc)}"
        print(f"  {job.dataset} {row.way}: {row.note}", file=sys.stderr, flush=True)
        return
    row.add(seconds, cpu, own)
    print(f"  {job.dataset} {row.way}: {seconds:.2f} s, own CPU {own:.1f} s", file=sys.stderr,
          flush=True)


def describe(exc: BaseException) -> str:
    """The error in one line; a command's own last line of stderr where there is one."""
    if isinstance(exc, subprocess.CalledProcessError):
        err = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        return f"{exc.cmd[0]} exited {exc.returncode}" + (f": {err[-1][:200]}" if err else "")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def enqueue_row(settings: Settings, runs: int) -> report.Row:
    """The producer's wall time, interpreter start included, against an idle queue."""
    probe = replace(settings, queue=f"{settings.queue}-enqueue")
    times = [runner.enqueue_wall_seconds(probe, ["gadm", "timezone"]) for _ in range(runs + 2)]
    runner.purge(probe)
    with connect(settings, autocommit=True) as conn:
        run_ledger.forget_unstarted(conn, "cli")
    return report.Row("both", "enqueue (producer CLI)", times)


def speedups(rows: list[report.Row], workers: int) -> list[str]:
    notes = []
    for dataset in dict.fromkeys(r.dataset for r in rows):
        one = [r for r in rows if r.dataset == dataset and r.way == "geoload 1 worker"]
        many = [r for r in rows if r.dataset == dataset and r.way == f"geoload {workers} workers"]
        if one and many:
            notes.append(f"{dataset}: 1 → {workers} workers speedup "
                         f"{1 / report.paired_ratio(many[0], one[0]):.2f}x")
    return notes


if __name__ == "__main__":
    sys.exit(cli.run(main))
