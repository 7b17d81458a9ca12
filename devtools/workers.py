"""Start a local group of Dramatiq worker processes, as a user runs them.

The benchmark and the tests use this to run ``dramatiq actors`` for real: a
process tree in its own session, ready once every process has sent a heartbeat,
stopped with SIGTERM (in-flight messages finish) and killed if it hangs. If the
process that started it dies first (a benchmark killed mid-run), the group gets a
SIGTERM too: left running, it would consume the next run's queue with settings that
point at a file server that is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from service.live import Live
from service.settings import Settings, to_env

ROOT = Path(__file__).resolve().parents[1]


#: prctl(2) option: the signal this process gets when its parent thread dies.
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int):  # type: ignore[no-untyped-def]
    """A preexec function: SIGTERM the child when ``parent`` dies (Linux). Only from the
    main thread, since the kernel ties it to the thread that forked, not the process."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not \
            threading.main_thread():
        return None

    def arm() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


class WorkerGroup:
    """``dramatiq actors --processes N --threads M`` with ``settings`` as its environment."""

    def __init__(self, settings: Settings, *, processes: int = 2, threads: int = 2,
                 log: Path | None = None, **env: str) -> None:
        self.settings = settings
        self.processes = processes
        self.log = log or Path(settings.cache_dir).parent / f"workers-{time.time_ns()}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # Prefetch counts messages in progress: one per thread keeps every thread busy
        # without a busy process holding chunks an idle one could run.
        environment = {**to_env(settings), "PYTHONPATH": str(ROOT),
                       "dramatiq_queue_prefetch": str(threads), "GEOLOAD_WORKER_METRICS": "0",
                       **env}
        cmd = [sys.executable, "-m", "dramatiq", "actors", "--processes", str(processes),
               "--threads", str(threads), "--worker-shutdown-timeout", "10000"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=environment, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with(os.getpid()))

    def wait_ready(self, timeout: float = 60) -> "WorkerGroup":
        """Block until every worker process has sent a heartbeat."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"workers exited: {self.tail()}")
            if len(self.ready_pids()) >= self.processes:
                return self
            time.sleep(0.1)
        raise TimeoutError(f"workers not ready after {timeout}s: {self.tail()}")

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the dramatiq main process)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return [int(pid) for pid in out.split()]

    def ready_pids(self) -> set[int]:
        mine = set(self.worker_pids())
        beats = Live(self.settings).workers()
        return {pid for pid in (int(w["worker"].rsplit(":", 1)[1]) for w in beats
                                if w.get("queue") == self.settings.queue) if pid in mine}

    def peak_rss_bytes(self) -> dict[int, int]:
        """Each worker process's peak resident set (VmHWM) so far."""
        peaks = {}
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) * 1024
        return peaks

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the tree (in-flight messages finish), SIGKILL it if it hangs."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> "WorkerGroup":
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
