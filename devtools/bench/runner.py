"""One timed geoload run: real worker processes, real broker, the dataset published."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pika
import psycopg
from psycopg import sql

from devtools.bench.cpu import Busy
from devtools.bench.own import OwnCPU, descendants
from devtools.workers import ROOT, WorkerGroup
from service import catalog
from service.ledger.status import RunStatus, run_status
from service.live import Live
from service.pipeline.broker import make_broker
from service.pipeline.start import start
from service.postgres import connect
from service.settings import Settings, to_env


@dataclass(frozen=True)
class Timed:
    seconds: float
    wall: float
    peak_rss: int
    processes: int
    threads: int
    cpu: float | None = None
    #: CPU seconds of the worker processes and the database's backends alone.
    own_cpu: float | None = None
    #: Each worker process's peak RSS, and the bytes the cache took on disk by the end.
    peaks: tuple[int, ...] = ()
    cache_bytes: int = 0


def geoload_once(settings: Settings, dataset: str, processes: int, threads: int,
                 work: Path, *, env: dict[str, str] | None = None,
                 around: AbstractContextManager[Any] | None = None) -> Timed:
    """Load ``dataset`` once with a fresh cache: download included, worker start excluded.

    ``seconds`` runs from the first message picked up to the dataset published, from
    the load's own timestamps in ``geoload.loads``; ``cpu`` is the machine's busy CPU
    seconds from the enqueue to the run's end (the workers', PostgreSQL's, the file server's).
    ``env`` is added to the workers' environment; ``around`` is entered for the timed part
    (the profiler's samplers).
    """
    cache = work / f"cache-{time.time_ns()}"
    run_settings = replace(settings, cache_dir=cache)
    purge(run_settings)
    group = WorkerGroup(run_settings, processes=processes, threads=threads,
                        log=work / "workers.log", **(env or {}))
    try:
        group.wait_ready()
        started = time.perf_counter()
        own = OwnCPU(settings.database_url, in_process=False,
                     pids=lambda: descendants(group.proc.pid))
        with around or nullcontext(), Busy() as busy, own:
            run_id = _start(run_settings, dataset)
            status = _wait(run_settings, run_id, own.sampler.exclude)
        wall = time.perf_counter() - started
        peaks = tuple(sorted(group.peak_rss_bytes().values(), reverse=True))
        cache_bytes = disk_usage(cache)
    finally:
        group.stop()
        shutil.rmtree(cache, ignore_errors=True)
    load = status.datasets[0]
    if load.status != "published":
        raise RuntimeError(f"{dataset} did not load: {load.error} (see {group.log})")
    assert load.started_at and load.finished_at
    seconds = (load.finished_at - load.started_at).total_seconds()
    return Timed(seconds, wall, max(peaks, default=0), processes, threads, busy.seconds,
                 own.seconds, peaks, cache_bytes)


def disk_usage(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk (allocated blocks, as ``du`` counts)."""
    return sum(p.lstat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def bench_settings(base: Settings, database: str) -> Settings:
    """``base`` pointed at ``database`` (created with PostGIS if missing) and a queue of
    that database's own: a run purges its queue before it starts, and two benchmarks
    sharing one RabbitMQ (two test sessions) must not purge or take each other's messages."""
    url = base.database_url.rsplit("/", 1)[0] + "/" + database
    with psycopg.connect(base.database_url.rsplit("/", 1)[0] + "/postgres",
                         autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (database,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return replace(base, database_url=url, queue=f"geoload-bench-{database}")


def _start(settings: Settings, dataset: str) -> str:
    broker = make_broker(settings)
    with connect(settings, autocommit=True) as conn:
        return start(settings, conn, broker, [catalog.get(dataset)], origin="bench").run_id


def _wait(settings: Settings, run_id: str, unwatched: set[int],
          timeout: float = 3600) -> RunStatus:
    """Poll until the run ends; this connection's backend goes in ``unwatched``."""
    live = Live(settings)
    deadline = time.monotonic() + timeout
    with connect(settings, autocommit=True) as conn:
        unwatched.add(conn.info.backend_pid)
        while time.monotonic() < deadline:
            status = run_status(conn, live, run_id)
            if status is not None and status.finished:
                return status
            time.sleep(0.05)
    raise TimeoutError(f"run {run_id} did not finish in {timeout}s")


def purge(settings: Settings) -> None:
    """Empty the bench queue, so that nothing from an earlier run is waiting in it."""
    with pika.BlockingConnection(pika.URLParameters(settings.broker_url)) as connection:
        channel = connection.channel()
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(settings.queue + suffix)


def enqueue_wall_seconds(settings: Settings, datasets: list[str]) -> float:
    """Wall time of ``python -m service.enqueue …``, interpreter start included."""
    env = {**to_env(settings), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "service.enqueue", *datasets], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - started
