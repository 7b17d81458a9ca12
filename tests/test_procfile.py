"""The Procfile under honcho, the no-Docker way to run the stack on one host.

honcho starts the Procfile's processes against the local services (this
session's database and queue), a small load goes through them, and honcho is
stopped the way a person stops it, leaving no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from service.live import Live
from service.settings import Settings
from tests.conftest import ROOT, purge_queue, run_cli, worker_env

pytestmark = pytest.mark.e2e

VENV_BIN = ROOT / ".venv" / "bin"
#: A cron that never comes due during a test: no refresh run joins the load below.
QUIET_CRON = "0 0 1 1 *"


@dataclass
class Stack:
    """honcho, and the sessions it started: each Procfile process leads one of its own."""

    proc: subprocess.Popen[bytes]
    log: Path
    roles: list[str]
    env: dict[str, str]
    settings: Settings
    sessions: set[int] = field(default_factory=set)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def note_sessions(self) -> None:
        """Sessions of honcho's descendants (honcho → its runner → ``sh -c`` in a new session)."""
        tree, todo = set(), [self.proc.pid]
        while todo:
            out = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True,
                                 text=True).stdout
            todo += [int(pid) for pid in out.split() if int(pid) not in tree]
            tree |= {int(pid) for pid in out.split()}
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                self.sessions.add(os.getsid(pid))
        self.sessions.discard(os.getsid(0))

    def leftovers(self) -> list[int]:
        """Processes still alive in any session honcho started."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) in self.sessions:
                        found.append(int(entry.name))
                except ProcessLookupError:
                    continue
        return found

    def worker_pids(self) -> set[int]:
        """Worker processes started by this honcho that send heartbeats."""
        self.note_sessions()
        pids = set()
        for beat in Live(self.settings).workers():
            pid = int(beat["worker"].rsplit(":", 1)[1])
            with contextlib.suppress(ProcessLookupError):
                if beat.get("queue") == self.settings.queue and os.getsid(pid) in self.sessions:
                    pids.add(pid)
        return pids

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.running(), f"honcho exited:\n{self.output()[-4000:]}"
            if ready():
                return
            time.sleep(0.3)
        raise TimeoutError(f"{what} not ready after {timeout}s:\n{self.output()[-4000:]}")

    def kill(self) -> None:
        """Teardown, whatever the test did: honcho first, then anything it left."""
        if self.running():
            self.note_sessions()
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        for sid in [*self.sessions, self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sid, signal.SIGKILL)
        self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def stack(clean_db: Settings, tmp_path: Path) -> Iterator[Stack]:
    purge_queue(clean_db)
    roles = ["worker", "scheduler"]
    if (ROOT / "service" / "dashboard" / "__main__.py").exists():
        roles.append("dashboard")
    env = worker_env(clean_db, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                     GEOLOAD_WORKER_PROCESSES="2", GEOLOAD_WORKER_THREADS="2",
                     GEOLOAD_REFRESH_CRON=QUIET_CRON, GEOLOAD_DASHBOARD_HOST="127.0.0.1",
                     GEOLOAD_DASHBOARD_PORT=str(free_port()))
    no_dotenv = tmp_path / "empty.env"  # a developer's .env must not redirect the test
    no_dotenv.write_text("")
    log = tmp_path / "honcho.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "honcho"), "--no-colour", "-f", str(ROOT / "Procfile"),
             "-d", str(ROOT), "-e", str(no_dotenv), "start", *roles],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stack = Stack(proc, log, roles, env, clean_db)
    try:
        yield stack
    finally:
        stack.kill()


def test_honcho_runs_the_stack_and_a_load_goes_through_it(stack: Stack, db):
    stack.wait_for("two worker processes", lambda: len(stack.worker_pids()) >= 2)
    stack.wait_for("the scheduler", lambda: "refresh_datasets@" in stack.output())
    if "dashboard" in stack.roles:
        up = run_cli("service.wait", "dashboard", "--timeout", "60", settings=stack.settings,
                     timeout=90, **{k: stack.env[k] for k in ("GEOLOAD_DASHBOARD_HOST",
                                                              "GEOLOAD_DASHBOARD_PORT")})
        assert up.returncode == 0, up.stderr + stack.output()[-3000:]
    pids = stack.worker_pids()

    done = run_cli("service.enqueue", "gadm", "timezone", "--wait", "--json",
                   settings=stack.settings, timeout=600)

    assert done.returncode == 0, done.stderr[-3000:] + stack.output()[-3000:]
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["status"] == "succeeded"
    workers = {int(w.rsplit(":", 1)[1]) for (w,) in db.execute(
        "SELECT c.worker FROM geoload.chunks c JOIN geoload.loads d USING (load_id) "
        "WHERE d.run_id = %s", (final["run_id"],)).fetchall()}
    assert workers and workers <= pids, (workers, pids)


def test_honcho_stops_every_process_it_started(stack: Stack):
    stack.wait_for("two worker processes", lambda: len(stack.worker_pids()) >= 2)
    stack.wait_for("the scheduler", lambda: "refresh_datasets@" in stack.output())

    stack.proc.send_signal(signal.SIGINT)  # Ctrl-C
    stack.proc.wait(30)

    deadline = time.monotonic() + 10
    while stack.leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.leftovers() == []
    text = stack.output()
    for role in stack.roles:
        assert re.search(rf"{role}\.1 stopped", text), text[-3000:]
