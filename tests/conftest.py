"""Shared fixtures: the real services, generated upstream files on a loopback HTTP server,
and Dramatiq worker processes.

Tests run against the real PostgreSQL/PostGIS, Redis and RabbitMQ on this
machine, isolated by a test database, a Redis database number and a queue
name of their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest

from devtools.workers import WorkerGroup
from service import settings as config
from service.ledger import schema
from service.live import Live
from service.settings import Settings, to_env

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("GEOLOAD_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
#: One database per pytest session, so that concurrent sessions never see each other's tables.
TEST_DB = os.environ.get("GEOLOAD_TEST_DB", f"geoload_test_{os.getpid()}")
TEST_REDIS = os.environ.get("GEOLOAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATA_SCHEMAS = ("gadm", "timezone", "geoload", "geoload_staging", "geoload_archive", "mine")


def _database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _create_test_database() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (TEST_DB,)).fetchone()
        if not exists:
            admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(
                psycopg.sql.Identifier(TEST_DB)))
    with psycopg.connect(_database_url(TEST_DB), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            psycopg.sql.Identifier(name)))


def reset_database(url: str) -> None:
    """Drop everything geoload made, so that each test module starts clean."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in DATA_SCHEMAS:
            conn.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                psycopg.sql.Identifier(name)))
        schema.ensure(conn)


def purge_queue(settings: Settings) -> None:
    params = pika.URLParameters(settings.broker_url)
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(settings.queue + suffix)


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at the test database, Redis db 15 and a queue of this session."""
    _create_test_database()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(TEST_DB),
        "REDIS_URL": TEST_REDIS,
        "GEOLOAD_QUEUE": f"geoload-test-{os.getpid()}",
        "GEOLOAD_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "GEOLOAD_CHUNK_FEATURES": "150",
        "GEOLOAD_CHUNK_BYTES": "400000",
        "GEOLOAD_MAX_RETRIES": "3",
        # pinned, so that no test asks GitHub for the newest release
        "GEOLOAD_TIMEZONE_RELEASE": "2026c",
    }
    settings = config.from_env(env)
    config.override(settings)
    yield settings
    config.override(None)
    try:
        purge_queue(settings)
    except pika.exceptions.AMQPError:
        pass
    if "GEOLOAD_TEST_DB" not in os.environ:
        _drop_database(TEST_DB)


@pytest.fixture(scope="session")
def upstream_files(tmp_path_factory: pytest.TempPathFactory):
    """Generated GADM-like and timezone-like files, laid out at upstream's URL paths."""
    from devtools.testdata.mirror import generate

    root = tmp_path_factory.mktemp("upstream")
    manifest = generate(root, size="small", timezone_release="2026c")
    return root, manifest


@pytest.fixture(scope="session")
def upstream(upstream_files):
    """A loopback HTTP server standing in for upstream (Range, ETag, fault injection)."""
    from devtools.testdata.server import serve

    root, _ = upstream_files
    with serve(root) as server:
        yield server


@pytest.fixture(scope="session")
def settings(base_settings: Settings, upstream) -> Settings:
    """Base settings routed through the loopback mirror."""
    settings = replace(base_settings, mirror=upstream.url,
                       extra={**base_settings.extra, "GEOLOAD_MIRROR": upstream.url})
    config.override(settings)
    return settings


@pytest.fixture()
def db(settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture()
def clean_db(settings: Settings) -> Settings:
    reset_database(settings.database_url)
    return settings


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a child process (CLI, worker) needs to act as ``settings``."""
    return {**to_env(settings), "PYTHONPATH": str(ROOT), "dramatiq_queue_prefetch": "2",
            "GEOLOAD_WORKER_METRICS": "0", **extra}


class Workers(WorkerGroup):
    """A worker group started by a test; ``pids`` are the ones that sent heartbeats."""

    def __init__(self, settings: Settings, processes: int = 2, threads: int = 2,
                 **env: str) -> None:
        super().__init__(settings, processes=processes, threads=threads, **env)

    def pids(self, live: Live | None = None) -> set[int]:
        return self.ready_pids()


@pytest.fixture()
def workers(clean_db: Settings) -> Iterator[Workers]:
    purge_queue(clean_db)
    group = Workers(clean_db)
    group.wait_ready()
    yield group
    group.stop()


@pytest.fixture()
def bench_db() -> Iterator[str]:
    """A database the benchmark creates and fills, dropped afterwards."""
    name = f"geoload_benchtest_{os.getpid()}"
    yield name
    _drop_database(name)


def run_cli(module: str, *args: str, settings: Settings, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module>`` the way a user does."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          env=worker_env(settings, **env), capture_output=True, text=True,
                          timeout=timeout)


def have(command: str) -> bool:
    return shutil.which(command) is not None


@contextmanager
def new_upstream_version(root: Path, scratch: Path, *, seed: int = 5) -> Iterator[Any]:
    """Upstream publishes other files (other counts) at the same URLs, until the block ends.

    Yields the new version's manifest (its feature counts).
    """
    from devtools.testdata.mirror import generate

    manifest = generate(scratch / "v2", size="tiny", timezone_release="2026c", seed=seed)
    swapped = []
    for new in (scratch / "v2").rglob("*.zip"):
        target = root / new.relative_to(scratch / "v2")
        backup = target.with_name(target.name + ".v1")
        target.rename(backup)
        new.replace(target)
        swapped.append((target, backup))
    try:
        yield manifest
    finally:
        for target, backup in swapped:
            backup.replace(target)


def staging_left(db: psycopg.Connection, wait: float = 20) -> int:
    """Staging tables still there once they had ``wait`` seconds to go: a failed load's are
    dropped by its failure path, which a chunk still running may trail."""
    deadline = time.monotonic() + wait
    while True:
        row = db.execute("SELECT count(*) FROM pg_tables "
                         "WHERE schemaname = 'geoload_staging'").fetchone()
        left = int(row[0]) if row else 0
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def table_counts(settings: Settings, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(settings.database_url) as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                for t in tables}


class ConcurrentReader:
    """Counts rows of ``tables`` in a loop on its own connection while the block runs.

    ``seen`` collects every count observed; ``errors`` every error other than a lost
    connection (``tolerate_outages``), which a PostgreSQL restart causes by design.
    """

    def __init__(self, settings: Settings, tables: list[str], *,
                 tolerate_outages: bool = False) -> None:
        self.settings, self.tables, self.tolerate = settings, tables, tolerate_outages
        self.seen: dict[str, set[int]] = {t: set() for t in tables}
        self.errors: list[str] = []
        self.outages = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "ConcurrentReader":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                conn = conn if conn is not None and not conn.closed else psycopg.connect(
                    self.settings.database_url, autocommit=True, connect_timeout=3)
                for table in self.tables:
                    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                    self.seen[table].add(count)
            except psycopg.OperationalError as exc:
                if not self.tolerate:
                    self.errors.append(str(exc))
                self.outages += 1
                conn = None
                time.sleep(0.2)
            except psycopg.Error as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                conn = None
            time.sleep(0.005)
