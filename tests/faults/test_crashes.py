"""Crashes and outages during a real run: nothing lost, nothing duplicated, old data readable.

Each test loads a first version in-process, then runs a second version through real
worker processes while a fault is injected, with a reader counting rows on its own
connection the whole time. Afterwards the tables hold exactly the new source's
features, no key twice, no staging table is left, and the reader never saw an error or
a count other than the old or the new one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from service import catalog
from service.ledger.status import Poller, RunStatus
from service.live import Live
from service.pipeline import start as starting
from service.pipeline.broker import make_broker, send
from service.pipeline.messages import CHUNK, FETCH, PLAN, Next
from service.settings import Settings
from tests.conftest import (
    ConcurrentReader,
    Workers,
    new_upstream_version,
    purge_queue,
    table_counts,
)
from tests.support.driver import drain, new_run
from tests.support.pieces import gadm_pieces_off
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

GADM_PATH = "/gadm/gadm4.1/gadm_410-levels.zip"
TABLES = ["gadm.adm_2", "gadm.adm_3", "gadm.adm_4", "timezone.timezones"]
KEYS = {"timezone.timezones": "tzid"}


@pytest.fixture()
def previous(clean_db: Settings) -> dict[str, int]:
    """The version readers must see until the new one is published: loaded in-process."""
    purge_queue(clean_db)
    run_id = new_run(clean_db, "gadm", "timezone")
    drain(clean_db, [Next(step, (run_id, name)) for name in ("gadm", "timezone")
                     for step in (FETCH, PLAN)])
    return table_counts(clean_db, TABLES)


@pytest.fixture()
def new_version(upstream_files, tmp_path) -> Iterator[dict[str, int]]:
    """Upstream now serves another version; yields its feature count per table."""
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path) as manifest:
        counts = {f"gadm.{layer.lower()}": n for layer, n in manifest.gadm.features.items()}
        counts["timezone.timezones"] = manifest.timezone.features
        yield counts


@pytest.fixture()
def reader(settings: Settings, previous) -> Iterator[ConcurrentReader]:
    with ConcurrentReader(settings, TABLES, tolerate_outages=True) as watching:
        yield watching


def start(settings: Settings, *datasets: str) -> str:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        return starting.start(settings, conn, make_broker(settings),
                              [catalog.get(d) for d in datasets], origin="test").run_id


def wait_run(settings: Settings, run_id: str, timeout: float = 240) -> RunStatus:
    poll = Poller(settings, Live(settings), run_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = poll()
        if status is not None and status.finished:
            return status
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} still {status.status if status else '?'}")


#: The publish step drops the retired tables right after the swap commits, and a run reads
#: as published from that commit on. If the connection is lost between the two (an outage
#: these tests cause), the drop is left to the publish message's retry, whose backoff
#: doubles from 1 s with each failed attempt during the outage: so the workers must still
#: be running while a test looks, and the window covers several doublings.
RETIRED_DROP_S = 90


def staging_left(settings: Settings) -> list[str]:
    """Tables still in the staging schema once the publish step had time to drop them."""
    deadline = time.monotonic() + RETIRED_DROP_S
    while True:
        with psycopg.connect(settings.database_url) as db:
            left = [r[0] for r in db.execute("SELECT tablename FROM pg_tables "
                                             "WHERE schemaname = 'geoload_staging'")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _who_holds(settings: Settings, tables: list[str]) -> list[tuple]:
    """What PostgreSQL says about the tables left: which sessions lock them, doing what."""
    with psycopg.connect(settings.database_url) as db:
        return db.execute(
            "SELECT c.relname, l.mode, l.granted, a.state, left(a.query, 80) FROM pg_locks l "
            "JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a USING (pid) "
            "WHERE c.relname = ANY(%s)", (tables,)).fetchall()


def assert_new_version_complete(settings: Settings, reader: ConcurrentReader,
                                old: dict[str, int], new: dict[str, int]) -> None:
    assert table_counts(settings, TABLES) == {t: new[t] for t in TABLES}
    with psycopg.connect(settings.database_url) as db:
        for table in TABLES:
            key = KEYS.get(table, "fid")
            total, distinct = db.execute(
                f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
            assert total == distinct, f"duplicate keys in {table}"
    left = staging_left(settings)
    assert left == [], _who_holds(settings, left)
    assert not reader.errors, reader.errors[:3]
    for table in TABLES:
        assert reader.seen[table] <= {old[table], new[table]}, table


def worker_doing(settings: Settings, group: Workers, actor: str) -> int | None:
    """The pid of a process of ``group`` running ``actor`` now, from its heartbeat."""
    mine = set(group.worker_pids())
    for beat in Live(settings).workers():
        pid = int(beat["worker"].rsplit(":", 1)[1])
        if pid in mine and any(d.get("actor") == actor for d in beat.get("doing", [])):
            return pid
    return None


def kill_and_wait(group: Workers, pid: int) -> None:
    """``kill -9`` one worker process; Dramatiq then shuts the whole tree down."""
    os.kill(pid, signal.SIGKILL)
    try:
        group.proc.wait(60)
    except subprocess.TimeoutExpired:
        group.stop()


def backend_of(settings: Settings, *, wait_event: str, query_prefix: str = ""
               ) -> tuple[int, int] | None:
    """(backend pid, worker pid) of a geoload backend waiting on ``wait_event``."""
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        row = db.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name LIKE 'geoload:%%' AND wait_event = %s AND query LIKE %s",
            (wait_event, query_prefix + "%")).fetchone()
    return (row[0], int(row[1].rsplit(":", 1)[1])) if row else None


def test_kill_9_during_a_download_resumes_it(settings, upstream, previous, new_version, reader):
    upstream.clear_log()
    upstream.fault(GADM_PATH, "throttle", rate=300_000, once=True)
    group = Workers(settings)
    group.wait_ready()
    run_id = start(settings, "gadm", "timezone")
    pid = wait_for(lambda: worker_doing(settings, group, "fetch_source") if any(
        r.bytes_sent > 400_000 for r in upstream.requests(GADM_PATH)) else None,
        what="a download in progress")
    kill_and_wait(group, pid)
    with Workers(settings) as supervisor_restart:
        assert supervisor_restart.ready_pids()
        final = wait_run(settings, run_id)
        assert final.status == "succeeded", [d.error for d in final.datasets]
        gets = [r for r in upstream.requests(GADM_PATH) if r.method == "GET"]
        assert any(r.status == 206 and r.headers.get("Range", "").startswith("bytes=")
                   for r in gets), [(r.status, dict(r.headers)) for r in gets]
        assert_new_version_complete(settings, reader, previous, new_version)


class LockedLayer:
    """Fetch and plan gadm in-process, and hold an exclusive lock on one staging table.

    A worker sent one of ``chunks`` blocks in its COPY until :meth:`release`, which
    opens a window to crash it at a known point.
    """

    def __init__(self, settings: Settings, layer: str) -> None:
        self.run_id = new_run(settings, "gadm")
        self.chunks = drain(settings, [Next(FETCH, (self.run_id, "gadm")),
                                       Next(PLAN, (self.run_id, "gadm"))], stop_before=CHUNK)
        self.layer = [c for c in self.chunks if c.args[2] == layer]
        self._lock = psycopg.connect(settings.database_url)
        (staging,) = self._lock.execute(
            "SELECT staging_table FROM geoload.load_layers JOIN geoload.loads USING (load_id) "
            "WHERE run_id = %s AND layer = %s", (self.run_id, layer)).fetchone()
        self._lock.execute(f'LOCK TABLE geoload_staging."{staging}" IN ACCESS EXCLUSIVE MODE')

    def release(self) -> None:
        if not self._lock.closed:
            self._lock.rollback()
            self._lock.close()


@pytest.fixture()
def locked_adm3(settings, previous) -> Iterator[LockedLayer]:
    locked = LockedLayer(settings, "ADM_3")
    yield locked
    locked.release()


def test_kill_9_during_a_copy_redoes_the_chunk(settings, previous, new_version, reader,
                                               locked_adm3):
    group = Workers(settings)
    group.wait_ready()
    send(make_broker(settings), settings, locked_adm3.chunks)
    _, worker = wait_for(lambda: backend_of(settings, wait_event="relation",
                                            query_prefix="COPY"), what="a blocked COPY")
    kill_and_wait(group, worker)
    locked_adm3.release()
    with Workers(settings):
        final = wait_run(settings, locked_adm3.run_id)
    assert final.status == "succeeded", [d.error for d in final.datasets]
    assert _chunk_attempts(settings, locked_adm3.run_id, "ADM_3", min_attempts=2) >= 1
    assert table_counts(settings, TABLES[:3]) == {t: new_version[t] for t in TABLES[:3]}
    with psycopg.connect(settings.database_url) as db:  # the lookup pieces too, once each
        assert gadm_pieces_off(db) == {}


@contextmanager
def commits_wait_for_a_standby(settings: Settings) -> Iterator[None]:
    """Every commit waits for a synchronous standby that does not exist, until the block ends.

    The commit is durable locally but the worker never hears back: exactly the state of
    a worker killed after its COPY committed and before it acked the message.
    """
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'geoload_no_such_standby'")
        admin.execute("SELECT pg_reload_conf()")
        try:
            yield
        finally:
            admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            admin.execute("SELECT pg_reload_conf()")


def test_kill_9_after_commit_before_ack_loads_the_chunk_once(settings, previous, new_version,
                                                             reader, locked_adm3):
    first, rest = locked_adm3.layer[0], [c for c in locked_adm3.chunks
                                         if c != locked_adm3.layer[0]]
    group = Workers(settings, processes=1, threads=1)
    group.wait_ready()
    send(make_broker(settings), settings, [first])
    wait_for(lambda: backend_of(settings, wait_event="relation", query_prefix="COPY"),
             what="the COPY waiting for the lock")
    with commits_wait_for_a_standby(settings):
        locked_adm3.release()
        _, worker = wait_for(lambda: backend_of(settings, wait_event="SyncRep"),
                             what="the chunk's COMMIT waiting")
        kill_and_wait(group, worker)
    run_id = locked_adm3.run_id
    wait_for(lambda: _chunk_state(settings, run_id, first) == ("loaded", 1),
             what="the killed worker's commit to land")
    with Workers(settings):
        send(make_broker(settings), settings, rest)
        final = wait_run(settings, run_id)
    assert final.status == "succeeded", [d.error for d in final.datasets]
    # the redelivered message found its chunk loaded and did not load it again
    assert _chunk_state(settings, run_id, first) == ("loaded", 1)
    assert table_counts(settings, TABLES[:3]) == {t: new_version[t] for t in TABLES[:3]}
    with psycopg.connect(settings.database_url) as db:
        for table in TABLES[:3]:
            total, distinct = db.execute(
                f"SELECT count(*), count(DISTINCT fid) FROM {table}").fetchone()
            assert total == distinct
        assert gadm_pieces_off(db) == {}  # the lookup pieces too, once each


def _chunk_state(settings: Settings, run_id: str, chunk: Next) -> tuple[str, int]:
    with psycopg.connect(settings.database_url) as db:
        return db.execute(
            "SELECT c.status, c.attempts FROM geoload.chunks c JOIN geoload.loads USING (load_id) "
            "WHERE run_id = %s AND layer = %s AND chunk_no = %s",
            (run_id, chunk.args[2], chunk.args[3])).fetchone()


def _chunk_attempts(settings: Settings, run_id: str, layer: str, *, min_attempts: int) -> int:
    with psycopg.connect(settings.database_url) as db:
        return db.execute(
            "SELECT count(*) FROM geoload.chunks JOIN geoload.loads USING (load_id) "
            "WHERE run_id = %s AND layer = %s AND attempts >= %s",
            (run_id, layer, min_attempts)).fetchone()[0]


def test_rabbitmq_restart_mid_run(settings, previous, new_version, reader):
    with Workers(settings):
        run_id = start(settings, "gadm", "timezone")
        wait_for(lambda: _loaded_chunks(settings, run_id) >= 2, what="chunks loading")
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        time.sleep(1)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
        final = wait_run(settings, run_id)
        assert final.status == "succeeded", [d.error for d in final.datasets]
        assert_new_version_complete(settings, reader, previous, new_version)


def test_postgresql_restart_mid_run(settings, previous, new_version, reader):
    with Workers(settings):
        run_id = start(settings, "gadm", "timezone")
        wait_for(lambda: _loaded_chunks(settings, run_id) >= 2, what="chunks loading")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart",
                        "-m", "fast"], check=True, capture_output=True)
        final = wait_run(settings, run_id)
        assert final.status == "succeeded", [d.error for d in final.datasets]
        assert reader.outages >= 1
        assert_new_version_complete(settings, reader, previous, new_version)


def test_redis_restart_mid_run(settings, previous, new_version, reader):
    with Workers(settings):
        run_id = start(settings, "gadm", "timezone")
        wait_for(lambda: _loaded_chunks(settings, run_id) >= 2, what="chunks loading")
        restart_redis()
        final = wait_run(settings, run_id)
        assert final.status == "succeeded", [d.error for d in final.datasets]
        # progress survives Redis losing everything: it comes from the ledger in PostGIS
        assert all(d.loaded == d.total > 0 for d in final.datasets)
        assert_new_version_complete(settings, reader, previous, new_version)


def restart_redis() -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], capture_output=True)
    time.sleep(0.5)
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
                    "--port", "6379", "--save", "", "--appendonly", "no"], check=True,
                   capture_output=True)
    wait_for(lambda: subprocess.run(["redis-cli", "ping"], capture_output=True).returncode == 0,
             what="redis back")


def test_upstream_dies_mid_download_and_the_download_resumes(settings, upstream, previous,
                                                             new_version, reader):
    upstream.clear_log()
    upstream.fault(GADM_PATH, "truncate", after=200_000, once=True)
    with Workers(settings):
        run_id = start(settings, "gadm", "timezone")
        final = wait_run(settings, run_id)
        assert final.status == "succeeded", [d.error for d in final.datasets]
        gets = [r for r in upstream.requests(GADM_PATH) if r.method == "GET"]
        assert gets[0].status == 200 and 100_000 <= gets[0].bytes_sent <= 200_000
        resumed = gets[-1]
        assert resumed.status == 206 and resumed.headers["Range"].startswith("bytes=")
        size = Path(upstream.root / GADM_PATH.lstrip("/")).stat().st_size
        assert sum(r.bytes_sent for r in gets) < size + 200_000  # not downloaded twice
        assert_new_version_complete(settings, reader, previous, new_version)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI is root)")
def test_a_full_cache_disk_fails_clearly_and_keeps_the_old_data(settings, previous,
                                                                new_version, reader,
                                                                tmp_path):
    tiny = tmp_path / "tiny-disk"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(tiny)], check=True)
    try:
        full = replace(settings, cache_dir=tiny / "cache")
        with Workers(full):
            run_id = start(full, "gadm")
            final = wait_run(full, run_id)
    finally:
        subprocess.run(["umount", str(tiny)], check=False)
    (gadm,) = final.datasets
    assert final.status == "failed" and gadm.status == "failed"
    assert "not enough free space in " in gadm.error and "GEOLOAD_CACHE_DIR" in gadm.error
    assert "[gadm]" in gadm.error
    assert table_counts(settings, TABLES) == previous
    assert not reader.errors


def _loaded_chunks(settings: Settings, run_id: str) -> int:
    try:
        with psycopg.connect(settings.database_url, connect_timeout=3) as db:
            return db.execute("SELECT count(*) FROM geoload.chunks JOIN geoload.loads "
                              "USING (load_id) WHERE run_id = %s AND chunks.status = 'loaded'",
                              (run_id,)).fetchone()[0]
    except psycopg.OperationalError:
        return 0
