"""Cancel and retry through RabbitMQ with real worker processes (issue 14).

The step-level tests (tests/service/pipeline/test_cancel.py) drive each step in this
process, a chunk stopped mid-batch among them; here a user's run is in flight on the
broker, its download under way, when ``geoload cancel`` ends it, and ``geoload retry``
then loads it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from service.pipeline.broker import backlog, make_broker
from service.pipeline.messages import FETCH, PLAN, Next
from tests.conftest import new_upstream_version, run_cli, table_counts
from tests.support.driver import drain, new_run
from tests.support.waiting import wait_for

GADM_PATH = "/gadm/gadm4.1/gadm_410-levels.zip"
TABLES = ["gadm.adm_0", "gadm.adm_3", "gadm.adm_5", "timezone.timezones"]


def _statuses(settings, run_id: str) -> dict[str, str]:
    with psycopg.connect(settings.database_url) as db:
        return dict(db.execute("SELECT dataset, status FROM geoload.loads WHERE run_id = %s",
                               (run_id,)).fetchall())


def _live(settings) -> dict[str, str]:
    with psycopg.connect(settings.database_url) as db:
        return dict(db.execute("SELECT dataset, run_id FROM geoload.live").fetchall())


def _staging(settings) -> list[str]:
    with psycopg.connect(settings.database_url) as db:
        return [t for (t,) in db.execute("SELECT tablename FROM pg_tables "
                                         "WHERE schemaname = 'geoload_staging'")]


def test_cancel_a_run_in_flight_then_retry_it(workers, settings, upstream, upstream_files,
                                              tmp_path):
    first = new_run(settings, "gadm", "timezone")
    drain(settings, [Next(step, (first, d)) for d in ("gadm", "timezone")
                     for step in (FETCH, PLAN)])
    before = table_counts(settings, TABLES)
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path) as manifest:
        size = (Path(root) / GADM_PATH.lstrip("/")).stat().st_size
        upstream.clear_log()
        upstream.fault(GADM_PATH, "throttle", rate=max(size // 20, 20_000), once=True)
        # gadm alone: an unthrottled time zone load may publish before the cancel lands
        started = run_cli("service.cli", "load", "gadm", "--json", settings=settings)
        assert started.returncode == 0, started.stderr
        run_id = json.loads(started.stdout)["run_id"]
        wait_for(lambda: any(r.bytes_sent > size // 10 for r in upstream.requests(GADM_PATH)),
                 60, "the GADM download under way")

        cancelled = run_cli("service.cli", "cancel", run_id, "--json", settings=settings)

        assert cancelled.returncode == 0, cancelled.stderr
        assert _statuses(settings, run_id) == {"gadm": "cancelled"}
        # Queued and running messages find their load cancelled: the queue drains, the
        # download stops at its next block, and nothing is left in staging.
        broker = make_broker(settings)
        wait_for(lambda: backlog(broker, settings) == 0 and not _staging(settings), 60,
                 "the queue drained and staging dropped")
        time.sleep(1.0)  # would a download still running send more?
        sent = sum(r.bytes_sent for r in upstream.requests(GADM_PATH) if r.method == "GET")
        assert sent < size, f"the cancelled download went on: {sent} of {size} bytes"
        assert _statuses(settings, run_id) == {"gadm": "cancelled"}
        assert table_counts(settings, TABLES) == before  # the live version, untouched
        assert _live(settings) == {"gadm": first, "timezone": first}
        assert _staging(settings) == []

        retried = run_cli("service.cli", "retry", run_id, "--wait", "--json",
                          settings=settings, timeout=240)

        assert retried.returncode == 0, retried.stdout + retried.stderr
        second = json.loads(retried.stdout.strip().splitlines()[-1])["run_id"]
        assert second != run_id
        expected = {**{f"gadm.{layer.lower()}": n for layer, n in manifest.gadm.features.items()},
                    "timezone.timezones": before["timezone.timezones"]}
        assert table_counts(settings, TABLES) == {t: expected[t] for t in TABLES}
        assert _live(settings) == {"gadm": second, "timezone": first}
        with psycopg.connect(settings.database_url) as db:
            (retry_of,) = db.execute("SELECT retry_of FROM geoload.runs WHERE run_id = %s",
                                     (second,)).fetchone()
        assert retry_of == run_id
        wait_for(lambda: not _staging(settings), 30, "the retired tables dropped")
