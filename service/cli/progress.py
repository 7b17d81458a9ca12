"""Terminal progress of a run: a bar per dataset and per layer, until the run ends.

On a terminal the bars redraw in place (tqdm); in a log (CI, docker logs) a
line is printed whenever something moved, at most every few seconds.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

from service.ledger.status import DatasetStatus, RunStatus

POLL_S = 0.5
#: Width of the bars on a terminal that reports no size (some CI and ``script`` ptys).
FALLBACK_COLUMNS = 100
LOG_EVERY_S = 5.0


def watch(poll: Callable[[], RunStatus | None], *, out: TextIO = sys.stderr,
          interval: float = POLL_S, timeout: float | None = None) -> RunStatus | None:
    """Poll until the run has ended (or ``timeout``), drawing progress; returns the last status."""
    bars: dict[str, tqdm] = {}
    live = out.isatty()
    deadline = None if timeout is None else time.monotonic() + timeout
    last_line, last_log = "", 0.0
    status = poll()
    try:
        while status is not None:
            if live:
                _draw(bars, status, out)
            else:
                line = summary_line(status)
                if line != last_line and time.monotonic() - last_log >= LOG_EVERY_S or (
                        status.finished and line != last_line):
                    print(line, file=out, flush=True)
                    last_line, last_log = line, time.monotonic()
            if status.finished or (deadline is not None and time.monotonic() > deadline):
                break
            time.sleep(interval)
            status = poll()
    finally:
        for bar in bars.values():
            bar.close()
    return status


def _draw(bars: dict[str, tqdm], status: RunStatus, out: TextIO) -> None:
    for dataset in status.datasets:
        _bar(bars, dataset.dataset, f"{dataset.dataset} [{_state(dataset)}]", dataset.loaded,
             dataset.total, out)
        for layer in dataset.layers:
            _bar(bars, f"{dataset.dataset}/{layer.layer}", f"  {layer.table}", layer.loaded,
                 layer.source, out)


def _bar(bars: dict[str, tqdm], key: str, label: str, done: int, total: int,
         out: TextIO) -> None:
    bar = bars.get(key)
    if bar is None:
        sized = shutil.get_terminal_size((0, 0)).columns > 0
        bar = bars[key] = tqdm(total=total or None, desc=label, unit=" feat", file=out,
                               position=len(bars), leave=True, dynamic_ncols=sized,
                               ncols=None if sized else FALLBACK_COLUMNS)
    if total and bar.total != total:
        bar.total = total
    bar.set_description_str(label, refresh=False)
    bar.n = done
    bar.refresh()


def _state(dataset: DatasetStatus) -> str:
    if dataset.status == "fetching" and dataset.download:
        got, total = dataset.download.get("bytes", 0), dataset.download.get("total")
        return f"fetching {got / 1e6:.0f}/{(total or 0) / 1e6:.0f} MB"
    return dataset.status


def summary_line(status: RunStatus) -> str:
    parts = [f"{d.dataset}: {_state(d)} {d.loaded:,}/{d.total:,}" for d in status.datasets]
    return f"run {status.run_id} {status.status} | " + " | ".join(parts)
