"""A worker process's budget of chunk weight in flight, so that memory has a bound.

A chunk weighs its WKB bytes plus twice its largest feature's (see
:func:`service.load.plan.cut_chunks`): GDAL's read buffers and GEOS's noding index
make one huge polygon cost far more than as many bytes of small ones. Threads of
one process share this budget: a chunk waits until its weight fits, and a chunk
heavier than the whole budget (one huge polygon) runs alone. Peak RSS is then set
by the budget and the largest polygon, not by the file's size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar


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


K = TypeVar("K")

_budgets: dict[int, Budget] = {}
_lock = threading.Lock()


def for_process(capacity: int) -> Budget:
    """The budget shared by every thread of this process (one per capacity)."""
    with _lock:
        return _budgets.setdefault(capacity, Budget(capacity))


def send_order(weights: dict[K, int], capacity: int) -> list[K]:
    """Heaviest first, and after a chunk too heavy to share the budget with the next one,
    lighter chunks that fit beside it, about as heavy in all.

    Threads take messages in queue order, and a thread whose chunk does not fit waits with
    it. Sent purely by weight, the two heaviest timezone chunks (one 22 MB polygon, one of
    11 MB) went to the two threads together, and one waited 0.75 s for the other.
    """
    queue = sorted(weights, key=lambda k: weights[k], reverse=True)
    order: list[K] = []
    while queue:
        head = queue.pop(0)
        order.append(head)
        if not queue or weights[head] + weights[queue[0]] <= capacity:
            continue
        room, beside = capacity - weights[head], 0
        for key in [k for k in queue if weights[k] <= room]:
            if beside >= weights[head]:
                break
            queue.remove(key)
            order.append(key)
            beside += weights[key]
    return order
