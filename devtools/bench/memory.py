"""Does a worker's memory follow the file's size? Peak RSS loading a file, and one 4x bigger.

A streaming loader's peak is set by its chunk and in-flight budget, not by the file: the
benchmark's file is loaded beside a generated one a quarter its size, by one worker.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from devtools.bench import report, runner
from devtools.testdata.gadm import make_gadm_levels_zip
from devtools.testdata.mirror import SIZES, mirror_path
from devtools.testdata.server import serve
from devtools.testdata.timezone import make_timezone_zip
from service import catalog
from service.settings import Settings


def quarter_file(root: Path, dataset: str, settings: Settings, size: str) -> None:
    """A file shaped like the benchmark's, a quarter its size, at upstream's path."""
    spec = SIZES[size]
    target = root / mirror_path(catalog.get(dataset).url(settings))
    if dataset == "gadm":
        make_gadm_levels_zip(target, features=spec.features // 4, vertex_scale=spec.vertex_scale)
    else:
        make_timezone_zip(target, zones=spec.zones, vertices=spec.vertices // 4)


def scaling(settings: Settings, dataset: str, size: str, threads: int,
            work: Path, full: report.Row) -> tuple[report.Row, str]:
    """A row for the quarter-size file, and a note comparing its peak with the full file's."""
    root = work / f"quarter-{dataset}"
    quarter_file(root, dataset, settings, size)
    with serve(root) as server:
        timed = runner.geoload_once(replace(settings, mirror=server.url), dataset, 1, threads,
                                    work)
    row = report.Row(f"{dataset}/4", "geoload 1 worker", peak_rss=timed.peak_rss)
    row.add(timed.seconds, timed.cpu)
    growth = (full.peak_rss or 0) / timed.peak_rss - 1 if timed.peak_rss else float("nan")
    note = (f"{dataset}: peak RSS {timed.peak_rss / 2**20:.0f} MB for a 1/4-size file, "
            f"{(full.peak_rss or 0) / 2**20:.0f} MB for the full file: {growth:+.1%}")
    return row, note
