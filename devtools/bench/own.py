"""CPU seconds a way's own processes used: the loader's and its PostgreSQL backends'.

The machine's busy time (:mod:`devtools.bench.cpu`) counts everything on the machine, and
on a machine shared with other work (or with RabbitMQ's busy-waiting schedulers) that is
seconds of noise per run. This counts only the way's processes: children this process
waited for (ogr2ogr, psql, shp2pgsql, curl, unzip) from ``getrusage``, this process's own
CPU (peers that run in it: geopandas, DuckDB), processes given by pid (geoload's worker
processes, which live through the run) from ``/proc``, and the database's backends
sampled by :class:`devtools.bench.backends.ServerSampler`. The file server that
stands in for upstream is in this process, but idle while in-process peers run.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from devtools.bench.backends import ServerSampler

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc's children lists)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = Path(f"/proc/{parent}/task").iterdir()
            kids = [int(k) for t in tasks for k in (t / "children").read_text().split()]
        except OSError:
            continue
        found += kids
        todo += kids
    return found


class OwnCPU:
    """``with OwnCPU(url, in_process=False) as own: ...`` then ``own.seconds``.

    ``in_process``: count this process's CPU too (the way runs in it). A backend this
    process uses only to watch (the benchmark's poll of the ledger) is left out by adding
    its pid to ``own.sampler.exclude``.
    """

    def __init__(self, database_url: str, *, in_process: bool,
                 pids: Callable[[], list[int]] | None = None) -> None:
        self.sampler = ServerSampler(database_url, urlsplit(database_url).path.lstrip("/"))
        self.pids, self.in_process = pids, in_process
        self.seconds = 0.0
        self._start: tuple[float, float, dict[int, float]] = (0.0, 0.0, {})

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> "OwnCPU":
        watched = {pid: process_cpu(pid) for pid in (self.pids() if self.pids else [])}
        self._start = (self._children(), time.process_time(), watched)
        self.sampler.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.sampler.__exit__(kind, exc, tb)
        children, mine, watched = self._start
        here = time.process_time() - mine if self.in_process else 0.0
        self.seconds = (self._children() - children + here
                        + sum(process_cpu(pid) - used for pid, used in watched.items())
                        + sum(self.sampler.totals.values()))
