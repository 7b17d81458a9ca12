"""``geoload load --local``: the pipeline in one process with RabbitMQ and Redis unreachable,
then ``retry`` and ``cancel`` from the command line, and ``settings``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from service.settings import Settings
from tests.conftest import ROOT, run_cli, worker_env
from tests.support.db import one

pytestmark = pytest.mark.e2e

#: Nothing listens there: every RabbitMQ and Redis call would fail at once.
UNREACHABLE = {"BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
               "REDIS_URL": "redis://127.0.0.1:1/0",
               "GEOLOAD_RABBITMQ_API": "http://guest:guest@127.0.0.1:1"}


def geoload(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli("service.cli", *args, settings=settings, **{**UNREACHABLE, **env})


def _counts(db: psycopg.Connection, manifest) -> tuple[dict[str, int], dict[str, int]]:
    want = {f"gadm.{layer.lower()}": n for layer, n in manifest.gadm.features.items()}
    want["timezone.timezones"] = manifest.timezone.features
    got = {table: one(db, f"SELECT count(*) FROM {table}") for table in want}
    return got, want


def test_local_load_needs_postgis_only(clean_db, db, upstream_files):
    _, manifest = upstream_files
    done = geoload(clean_db, "load", "gadm", "timezone", "--local", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "in this process (2 worker threads)" in done.stdout
    run_id = done.stdout.split()[1].rstrip(":")
    assert f"run {run_id} succeeded" in done.stderr
    got, want = _counts(db, manifest)
    assert got == want
    # Provenance and history in PostGIS, as with workers; every chunk loaded exactly once.
    assert one(db, "SELECT origin FROM geoload.runs WHERE run_id = %s", run_id) == "local"
    assert one(db, "SELECT array_agg(status ORDER BY dataset), count(sha256) FROM geoload.loads "
                   "WHERE run_id = %s", run_id) == (["published", "published"], 2)
    assert one(db, "SELECT count(*) FILTER (WHERE status <> 'loaded'), sum(loaded) "
                   "FROM geoload.chunks") == (0, sum(want.values()))
    assert one(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'geoload_staging'") == 0


def test_a_failure_ends_the_local_run_and_retry_loads_it(clean_db, db, upstream):
    failed = geoload(clean_db, "load", "timezone", "--local",
                     GEOLOAD_MIRROR=upstream.url + "/missing")
    assert failed.returncode == 1
    assert "timezone failed at fetch_source" in failed.stderr and "404" in failed.stderr
    first = failed.stdout.split()[1].rstrip(":")
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", first) == "failed"
    assert one(db, "SELECT to_regclass('timezone.timezones') IS NULL")

    retried = geoload(clean_db, "retry", first, "--local")
    assert retried.returncode == 0, retried.stderr
    second = retried.stdout.split()[1].rstrip(":")
    assert one(db, "SELECT retry_of FROM geoload.runs WHERE run_id = %s", second) == first
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", second) == "published"

    nothing = geoload(clean_db, "retry", second, "--local")
    assert nothing.returncode == 1 and "nothing to retry" in nothing.stderr


def test_cancel_from_the_command_line(clean_db, db):
    from service.ledger import runs

    with psycopg.connect(clean_db.database_url, autocommit=True) as conn:
        geoload(clean_db, "status")  # creates geoload's tables
        run_id = runs.create(conn, ["timezone", "gadm"], {}, origin="test")
    done = geoload(clean_db, "cancel", run_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"run {run_id}: cancelled timezone, gadm"
    again = geoload(clean_db, "cancel", run_id, "--json")
    assert json.loads(again.stdout)["noop"] is True
    status = geoload(clean_db, "status", run_id, "--json")
    assert json.loads(status.stdout)["status"] == "cancelled"
    unknown = geoload(clean_db, "cancel", "nope")
    assert unknown.returncode == 2 and "no run 'nope'" in unknown.stderr


def test_settings_show_value_and_source_with_passwords_masked(settings, tmp_path):
    (tmp_path / ".env").write_text("# comment\nGEOLOAD_QUEUE=from-dotenv\n"
                                   "GEOLOAD_DASHBOARD_TOKEN='s3cret'\n"
                                   "REDIS_URL=redis://:hidden@10.0.0.1:6379/0\n")
    env = {k: v for k, v in worker_env(settings).items()
           if not k.startswith("GEOLOAD_") and k != "REDIS_URL"}
    env["GEOLOAD_CHUNK_FEATURES"] = "150"
    env["DATABASE_URL"] = "postgresql://geoload:pw@db.example:5432/geoload"
    out = subprocess.run([sys.executable, "-m", "service.cli", "settings", "--json"],
                         cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    shown = {s["env"]: (s["value"], s["source"]) for s in json.loads(out.stdout)}
    assert shown["GEOLOAD_QUEUE"] == ("from-dotenv", ".env")
    assert shown["GEOLOAD_DASHBOARD_TOKEN"] == ("***", ".env")
    assert shown["REDIS_URL"] == ("redis://:***@10.0.0.1:6379/0", ".env")
    assert shown["DATABASE_URL"] == ("postgresql://geoload:***@db.example:5432/geoload",
                                     "environment")
    assert shown["GEOLOAD_CHUNK_FEATURES"] == ("150", "environment")
    assert shown["GEOLOAD_REFRESH_CRON"] == ("17 3 * * *", "default")
    assert "s3cret" not in out.stdout and "hidden" not in out.stdout and ":pw@" not in out.stdout


def test_without_rabbitmq_load_suggests_local(settings):
    done = geoload(settings, "load", "timezone")
    assert done.returncode == 3
    assert "RabbitMQ can't be reached" in done.stderr or "Redis can't be reached" in done.stderr
    assert "or load in this process, with PostGIS only: geoload load timezone --local" in \
        done.stderr


def test_a_local_run_whose_process_died_is_cancelled_by_the_next(clean_db, db):
    from service.ledger import runs, schema

    schema.ensure(db)
    dead = runs.create(db, ["gadm"], {}, origin="local")  # its process was kill -9'd
    busy = runs.create(db, ["gadm"], {}, origin="local")  # another terminal's, still going
    db.execute("UPDATE geoload.runs SET created_at = now() - interval '1 hour' "
               "WHERE run_id = %s", (dead,))
    done = geoload(clean_db, "load", "timezone", "--local")
    assert done.returncode == 0, done.stderr
    assert f"cancelled run {dead}" in done.stderr
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", dead) == "cancelled"
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", busy) == "queued"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_cancels_a_local_run_at_once_and_keeps_the_live_data(
        clean_db, db, upstream, upstream_files, tmp_path, signum):
    """The README says Ctrl-C cancels a --local run: measured by how long the process takes
    to end, how much of the download it still took, and what it left behind."""
    root, manifest = upstream_files
    first = geoload(clean_db, "load", "timezone", "--local")
    assert first.returncode == 0, first.stderr
    live = one(db, "SELECT count(*) FROM timezone.timezones")
    path = "/gadm/gadm4.1/gadm_410-levels.zip"
    size = (root / path.lstrip("/")).stat().st_size
    upstream.clear_log()
    upstream.fault(path, "throttle", rate=max(size // 60, 10_000), once=True)  # ~60 s
    # An empty cache: one an earlier test filled would answer without downloading.
    env = worker_env(clean_db, **UNREACHABLE, GEOLOAD_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "load", "gadm", "--local"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(r.bytes_sent > size // 20 for r in upstream.requests(path)):
            assert time.monotonic() < deadline, "the download never started"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    run_id = out.split()[1].rstrip(":")
    assert proc.returncode != 0
    assert took < 10, f"the process took {took:.1f} s to end after the signal"
    got = sum(r.bytes_sent for r in upstream.requests(path) if r.method == "GET")
    assert got < size // 2, f"the download went on after the signal: {got} of {size} bytes"
    assert "cancelled" in err, err
    assert one(db, "SELECT status FROM geoload.loads WHERE run_id = %s", run_id) == "cancelled"
    assert one(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'geoload_staging'") == 0
    assert one(db, "SELECT count(*) FROM timezone.timezones") == live
    assert one(db, "SELECT to_regclass('gadm.adm_0') IS NULL")
    assert live == manifest.timezone.features
