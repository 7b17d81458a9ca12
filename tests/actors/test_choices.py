"""Issue 13, end to end through RabbitMQ and two worker processes: what the producer chose
is what every worker loads, whatever the workers' own environment says."""

from __future__ import annotations

import json

import psycopg
import pytest

from devtools.testdata.mirror import mirror_path, timezone_url
from devtools.testdata.timezone import make_timezone_zip
from tests.conftest import run_cli

pytestmark = pytest.mark.e2e


def enqueue(settings, *args: str, **env: str) -> dict:
    done = run_cli("service.enqueue", *args, "--wait", "--json", settings=settings,
                   timeout=600, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_the_producers_release_is_loaded_not_the_workers(workers, settings, upstream_files):
    root, manifest = upstream_files
    other = make_timezone_zip(root / mirror_path(timezone_url("2026f")), zones=7,
                              vertices=5_000, seed=9)
    assert other.features != manifest.timezone.features
    # the workers run with GEOLOAD_TIMEZONE_RELEASE unset (2026c); the producer says 2026f
    final = enqueue(settings, "timezone", GEOLOAD_TIMEZONE_RELEASE="2026f")
    assert final["status"] == "succeeded"
    with psycopg.connect(settings.database_url) as db:
        count = db.execute("SELECT count(*) FROM timezone.timezones").fetchone()[0]
        release, url, options = db.execute(
            "SELECT release, source_url, options FROM geoload.loads WHERE run_id = %s",
            (final["run_id"],)).fetchone()
    assert count == other.features
    assert release == "2026f" and "/2026f/" in url and options["release"] == "2026f"
