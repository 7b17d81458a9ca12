"""CPU seconds the whole machine was busy while a way ran.

Wall time alone hides whether a way is short of cores or wasting them: geoload spreads
its work over worker processes and PostgreSQL backends, ogr2ogr over itself and one
backend. Counting every process on the machine (from ``/proc/stat``) covers them all, and
backends that have exited by the end, at the price of counting the little else running.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

STAT = Path("/proc/stat")
#: Fields of /proc/stat's "cpu" line that count as busy: user, nice, system, irq, softirq.
#: Idle, iowait and the time a hypervisor took (steal) don't.
BUSY_FIELDS = (0, 1, 2, 5, 6)


def busy_seconds() -> float | None:
    """Busy CPU seconds since boot, all cores together; None where /proc/stat is missing."""
    try:
        fields = STAT.read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    return sum(int(fields[i]) for i in BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")


class Busy:
    """``with Busy() as busy: ...`` then ``busy.seconds`` (None where it can't be read)."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self._start: float | None = None

    def __enter__(self) -> "Busy":
        self._start = busy_seconds()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        end = busy_seconds()
        if self._start is not None and end is not None:
            self.seconds = end - self._start
