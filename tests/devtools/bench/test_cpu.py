"""The machine's busy CPU seconds, read from /proc/stat around a piece of work."""

import hashlib
import os
import threading
import time

import pytest

from devtools.bench.cpu import Busy


def _burn(seconds: float) -> None:
    """``seconds`` of this thread's own CPU: hashing releases the GIL, so two threads use two
    cores. Counted in CPU, not wall time, so a machine busy with other work can't starve it."""
    deadline = time.thread_time() + seconds
    block = b"x" * (1 << 20)
    while time.thread_time() < deadline:
        hashlib.sha256(block).digest()


def test_busy_counts_the_cpu_every_thread_used():
    threads = [threading.Thread(target=_burn, args=(0.5,)) for _ in range(2)]
    before, started = time.process_time(), time.perf_counter()
    with Busy() as busy:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    used = time.process_time() - before  # this process's CPU, every thread's
    wall = time.perf_counter() - started
    assert used > 0.9
    assert busy.seconds is not None
    # The machine was busy at least while this process was, and not beyond every core.
    assert 0.9 * used <= busy.seconds <= 1.1 * wall * (os.cpu_count() or 1) + 0.05


def test_an_idle_wait_is_not_busy():
    """Busy counts the whole machine, so the check needs a machine that is quiet otherwise:
    a first window measures what other processes do, and only a quiet one is judged."""
    with Busy() as background:
        time.sleep(0.5)
    if background.seconds is not None and background.seconds >= 0.1:
        pytest.skip(f"other processes kept the machine busy ({background.seconds:.2f} CPU s "
                    "in 0.5 s): an idle wait can't be told from their work")
    with Busy() as busy:
        time.sleep(0.5)
    assert busy.seconds is not None and busy.seconds < 0.25
