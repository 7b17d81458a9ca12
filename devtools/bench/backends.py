"""PostgreSQL backends' CPU per kind of statement, for ``--profile`` and the own-CPU column.

pg_stat_statements would need a server restart (``shared_preload_libraries``), so this
samples instead: every :data:`INTERVAL_S` it reads each client backend of the database from
``pg_stat_activity`` and its CPU time from ``/proc/<pid>/stat`` (the server runs on this
machine), and charges what the backend used since the last sample to the statement it is
running. A statement that ends between two samples has its tail charged to the next one.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path
from types import TracebackType

import psycopg

INTERVAL_S = 0.02
_TICK = os.sysconf("SC_CLK_TCK")
#: (substring of the lower-cased statement, stage): the first that matches wins.
KINDS = (
    ("copy ", "COPY (server)"), ("using gist", "GiST index"), ("primary key", "primary key"),
    ("create index", "B-tree indexes"), ("analyze", "ANALYZE"), ("set schema", "swap"),
    ("rename to", "swap"), ("drop table", "swap"), ("lock table", "swap"),
    ("geoload.", "ledger statements"),
)


def kind(query: str, state: str | None) -> str:
    if state != "active":
        return "idle in transaction / between statements"
    text = query.lower()
    return next((name for needle, name in KINDS if needle in text), "other statements")


def backend_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class ServerSampler:
    """``with ServerSampler(url, database) as s: ...`` then ``s.totals``: CPU s per stage."""

    def __init__(self, url: str, database: str) -> None:
        self.url, self.database = url, database
        self.totals: dict[str, float] = defaultdict(float)
        #: Backends not to count: the benchmark's own watching connections.
        self.exclude: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-pg-profiler", daemon=True)

    def __enter__(self) -> "ServerSampler":
        self._thread.start()
        return self

    def __exit__(self, kind_: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last: dict[int, float] = {}
        with psycopg.connect(self.url, autocommit=True) as conn:
            started = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
            while not self._stop.wait(INTERVAL_S):
                rows = conn.execute(
                    "SELECT pid, query, state, backend_start >= %s FROM pg_stat_activity "
                    "WHERE datname = %s AND backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid()", (started, self.database)).fetchall()
                for pid, query, state, new in rows:
                    if pid in self.exclude:
                        continue
                    used = backend_cpu(pid)
                    if used is None:
                        continue
                    # a backend started since is counted whole; an older one from here on
                    delta = used - last.get(pid, 0.0 if new else used)
                    last[pid] = used
                    if delta > 0:
                        self.totals[kind(query or "", state)] += delta
