"""A worker process's budget of source geometry in flight, so that memory has a bound.

Decoding and validating a geometry takes about ten times its WKB size at peak
(GDAL's read buffers, GEOS's noding index). Threads of one process share this
budget: a chunk waits until its weight fits, and a chunk heavier than the whole
budget (one huge polygon) runs alone. Peak RSS is then set by the budget, not by
the file's size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Budget:
    """A counting semaphore measured in bytes.

    >>> budget = Budget(24_000_000)
    >>> with budget.hold(8_000_000):
    ...     pass
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.in_flight = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, weight: int) -> Iterator[None]:
        share = min(max(weight, 1), self.capacity)
        with self._changed:
            self._changed.wait_for(lambda: self.in_flight + share <= self.capacity)
            self.in_flight += share
        try:
            yield
        finally:
            with self._changed:
                self.in_flight -= share
                self._changed.notify_all()


_budgets: dict[int, Budget] = {}
_lock = threading.Lock()


def for_process(capacity: int) -> Budget:
    """The budget shared by every thread of this process (one per capacity)."""
    with _lock:
        return _budgets.setdefault(capacity, Budget(capacity))
