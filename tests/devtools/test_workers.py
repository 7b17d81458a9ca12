"""A worker group dies with the process that started it, instead of staying on to consume
the next run's queue (a benchmark killed mid-run once left one that stalled the next)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, worker_env

CHILD = """
import sys, time
from service.settings import get
from devtools.workers import WorkerGroup
group = WorkerGroup(get(), processes=1, threads=1)
group.wait_ready()
print(group.proc.pid, *group.worker_pids(), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_group_is_stopped_when_its_starter_is_killed(settings):
    starter = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT,
                               env=worker_env(settings), stdout=subprocess.PIPE, text=True)
    try:
        line = starter.stdout.readline() if starter.stdout else ""
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids), line
        starter.send_signal(signal.SIGKILL)
        starter.wait(10)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in pids), f"still running: {pids}"
    finally:
        if starter.poll() is None:
            starter.kill()
