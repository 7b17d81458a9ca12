"""The machine's busy CPU seconds, read from /proc/stat around a piece of work."""

import hashlib
import os
import threading
import time

from devtools.bench.cpu import Busy


def _burn(seconds: float) -> None:
    """Busy CPU: hashing releases the GIL, so two threads use two cores."""
    deadline = time.perf_counter() + seconds
    block = b"x" * (1 << 20)
    while time.perf_counter() < deadline:
        hashlib.sha256(block).digest()


def test_busy_counts_the_cpu_every_thread_used():
    threads = [threading.Thread(target=_burn, args=(0.5,)) for _ in range(2)]
    before = time.process_time()
    with Busy() as busy:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    used = time.process_time() - before  # this process's CPU, every thread's
    assert used > 0.4
    assert busy.seconds is not None
    # The machine was busy at least while this process was, and not beyond every core.
    assert 0.9 * used <= busy.seconds <= 1.5 * (os.cpu_count() or 1)


def test_an_idle_wait_is_not_busy():
    with Busy() as busy:
        time.sleep(0.5)
    assert busy.seconds is not None and busy.seconds < 0.25
