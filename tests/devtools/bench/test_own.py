"""A way's own CPU: its child processes, its backends, and this process only when asked."""

import subprocess
import sys
import time

import psycopg

from devtools.bench.own import OwnCPU

BURN = "import time\nt = time.process_time() + 0.4\nwhile time.process_time() < t: pass"


def _burn_here(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


def test_a_child_process_and_a_backend_count_and_this_process_only_when_asked(settings):
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with OwnCPU(settings.database_url, in_process=False) as own:
            subprocess.run([sys.executable, "-c", BURN], check=True)
            _burn_here(0.4)  # not the way's: left out
            conn.execute("SELECT count(*) FROM generate_series(1, 4000000)")
            time.sleep(0.1)  # one more sample of the backend after its statement
        backend = sum(own.sampler.totals.values())
        assert backend > 0.05
        # the child's 0.4 s (plus its start) and the backend's, not this process's 0.4 s
        assert 0.4 + backend <= own.seconds < 0.4 + backend + 0.35
        with OwnCPU(settings.database_url, in_process=True) as mine:
            _burn_here(0.4)
        assert 0.4 <= mine.seconds < 0.7


def test_a_watching_backend_is_left_out(settings):
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with OwnCPU(settings.database_url, in_process=False) as own:
            own.sampler.exclude.add(conn.info.backend_pid)
            time.sleep(0.1)
            conn.execute("SELECT count(*) FROM generate_series(1, 4000000)")
            time.sleep(0.1)
        assert own.seconds < 0.05
