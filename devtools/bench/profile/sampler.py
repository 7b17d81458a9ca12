"""A sampling CPU profiler that runs inside a worker process, for ``--profile``.

py-spy can't attach to a running process in this sandbox ("Failed to find python version
from target process"), so each worker samples itself: every :data:`INTERVAL_S` (20 ms;
/proc counts 10 ms ticks) a thread reads every other thread's CPU time from
``/proc/self/task/<tid>/stat`` and charges what it used since the last sample
to the stage its Python stack is in (:mod:`devtools.bench.profile.stages`). C code that
released the GIL (GEOS, GDAL, zlib) is charged to the Python line that called it. The
sampler's own CPU is counted as ``profiler``. Totals are written to
``$GEOLOAD_BENCH_PROFILE/worker-<pid>.json`` every second and at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from devtools.bench.profile.stages import stage

INTERVAL_S = 0.02
FLUSH_S = 1.0
_TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(tid: int) -> float:
    """CPU seconds (user + system) thread ``tid`` of this process has used."""
    try:
        text = Path(f"/proc/self/task/{tid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def run(out: Path) -> None:
    totals: dict[str, float] = defaultdict(float)
    last: dict[int, float] = {}
    me = threading.get_native_id()
    flushed = time.monotonic()

    def flush() -> None:
        out.write_text(json.dumps(dict(totals)))

    atexit.register(flush)
    while True:
        time.sleep(INTERVAL_S)
        frames = sys._current_frames()
        for thread in threading.enumerate():
            tid = thread.native_id
            if tid is None or thread.ident is None:
                continue
            used = thread_cpu(tid)
            delta = used - last.get(tid, used if tid != me else 0.0)
            last[tid] = used
            if delta > 0:
                totals["profiler" if tid == me else stage(frames.get(thread.ident))] += delta
        if time.monotonic() - flushed >= FLUSH_S:
            flush()
            flushed = time.monotonic()


def start() -> None:
    """Start sampling this process, and every process forked from it (dramatiq forks its
    worker processes), if ``GEOLOAD_BENCH_PROFILE`` names a folder."""
    if not os.environ.get("GEOLOAD_BENCH_PROFILE"):
        return
    _start_here()
    os.register_at_fork(after_in_child=_start_here)


def _start_here() -> None:
    out = Path(os.environ["GEOLOAD_BENCH_PROFILE"]) / f"worker-{os.getpid()}.json"
    threading.Thread(target=run, args=(out,), name="bench-profiler", daemon=True).start()
