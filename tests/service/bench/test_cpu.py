"""The machine's busy CPU seconds, read from /proc/stat around a piece of work."""

import hashlib
import os
import threading
import time

from service.bench.cpu import Busy


def _burn(seconds: float) -> None:
    """Busy CPU: hashing releases the GIL, so two threads use two cores."""
    deadline = time.perf_counter() + seconds
    block = b"x" * (1 << 20)
    while time.perf_counter() < deadline:
        hashlib.sha256(block).digest()


def test_busy_counts_the_cpu_every_thread_used():
    threads = [threading.Thread(target=_burn, args=(0.5,)) for _ in range(2)]
    with Busy() as busy:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert busy.seconds is not None
    # Two threads busy for 0.5 s each: close to 1 s on 2 cores (others may add a little).
    assert 0.6 * min(2, os.cpu_count() or 1) * 0.5 <= busy.seconds <= 2 * os.cpu_count()


def test_an_idle_wait_is_not_busy():
    with Busy() as busy:
        time.sleep(0.5)
    assert busy.seconds is not None and busy.seconds < 0.25
