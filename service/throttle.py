"""Progress reports at most every so often: each one is a Redis round trip.

On 2 busy cores a round trip waits for Redis to be scheduled: per-batch chunk
reports cost the GADM load 0.6 s of worker-thread time.
"""

from __future__ import annotations

import time


class Every:
    """``due()`` is true at most once per ``seconds`` (and the first time it is asked)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._next = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.seconds
        return True
