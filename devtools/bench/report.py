"""The benchmark's table: medians, ratios against ogr2ogr and the COPY floor, peak RSS and
the machine's busy CPU seconds."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    dataset: str
    way: str
    runs: list[float] = field(default_factory=list)
    peak_rss: int | None = None
    #: The machine's busy CPU seconds in each run, where measured.
    cpu: list[float] = field(default_factory=list)
    #: CPU seconds of the way's own processes and backends in each run (devtools.bench.own).
    own: list[float] = field(default_factory=list)
    #: Why the way has no (or fewer) runs: skipped where its tool is missing, or failed.
    note: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    def add(self, seconds: float, cpu: float | None = None, own: float | None = None) -> None:
        self.runs.append(seconds)
        if cpu is not None:
            self.cpu.append(cpu)
        if own is not None:
            self.own.append(own)


def table(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows with their ratios to the same dataset's ogr2ogr and COPY floor medians."""
    out = []
    for row in rows:
        peers = {r.way: r for r in rows if r.dataset == row.dataset and r.runs}
        ogr, floor = peers.get("ogr2ogr"), peers.get("raw binary COPY")
        out.append({
            "dataset": row.dataset, "way": row.way,
            "median_s": round(row.median, 3) if row.runs else None,
            "runs_s": [round(r, 3) for r in row.runs],
            "vs_ogr2ogr": round(paired_ratio(row, ogr), 3) if ogr and row.runs else None,
            "vs_copy_floor": round(paired_ratio(row, floor), 3) if floor and row.runs else None,
            "peak_rss_mb": round(row.peak_rss / 2**20) if row.peak_rss else None,
            "cpu_s": round(statistics.median(row.cpu), 2) if row.cpu else None,
            "own_cpu_s": round(statistics.median(row.own), 2) if row.own else None,
            "own_cpu_vs_ogr2ogr": (round(paired_own(row, ogr), 3)
                                   if ogr and row.own and ogr.own else None),
            "note": row.note,
        })
    return out


def paired_ratio(row: Row, peer: Row) -> float:
    """``row`` against ``peer``: the median of their per-round ratios when both ran in the
    same rounds (a slow round slows both), else the ratio of their medians."""
    if len(row.runs) != len(peer.runs):
        return row.median / peer.median
    return statistics.median(mine / theirs for mine, theirs in zip(row.runs, peer.runs))


def paired_own(row: Row, peer: Row) -> float:
    """Own CPU against ``peer``'s, paired by round as :func:`paired_ratio` does."""
    if len(row.own) != len(peer.own):
        return statistics.median(row.own) / statistics.median(peer.own)
    return statistics.median(mine / theirs for mine, theirs in zip(row.own, peer.own))


def render(entries: list[dict[str, Any]], notes: list[str]) -> str:
    header = (f"{'dataset':<9} {'way':<44} {'median s':>9} {'vs ogr2ogr':>10} "
              f"{'vs COPY':>8} {'peak RSS':>9} {'CPU s':>6} {'own CPU':>8} {'vs ogr':>7}  runs (s)")
    lines = [header, "-" * len(header)]
    for e in entries:
        lines.append(
            f"{e['dataset']:<9} {e['way']:<44} {_seconds(e['median_s'], 2):>9} "
            f"{_ratio(e['vs_ogr2ogr']):>10} {_ratio(e['vs_copy_floor']):>8} "
            f"{(str(e['peak_rss_mb']) + ' MB') if e['peak_rss_mb'] else '-':>9} "
            f"{_seconds(e['cpu_s']):>6} {_seconds(e['own_cpu_s']):>8} "
            f"{_ratio(e['own_cpu_vs_ogr2ogr']):>7}  "
            f"{', '.join(f'{r:.2f}' for r in e['runs_s'])}"
            + (f"  [{e['note']}]" if e.get("note") else ""))
    return "\n".join(lines + [""] + notes)


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def _seconds(value: float | None, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if value is not None else "-"
