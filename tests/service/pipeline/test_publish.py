"""Publishing retires the old tables and drops them, even if the first delivery died midway."""

from __future__ import annotations

import psycopg
import pytest

from service.pipeline.messages import FETCH, PLAN, PUBLISH, Next
from service.publish import swap
from tests.conftest import new_upstream_version
from tests.support.driver import drain, new_run, run_step


def staging_tables(settings) -> list[str]:
    with psycopg.connect(settings.database_url) as db:
        return [r[0] for r in db.execute("SELECT tablename FROM pg_tables "
                                         "WHERE schemaname = 'geoload_staging'")]


def load_until_publish(settings) -> list[Next]:
    run_id = new_run(settings, "timezone")
    return drain(settings, [Next(FETCH, (run_id, "timezone")), Next(PLAN, (run_id, "timezone"))],
                 stop_before=PUBLISH)


def test_a_connection_lost_after_the_swap_leaves_no_retired_table(
        clean_db, upstream_files, tmp_path, monkeypatch):
    settings = clean_db
    drain(settings, load_until_publish(settings))
    root, _ = upstream_files
    with new_upstream_version(root, tmp_path) as manifest:
        (publish_step,) = set(load_until_publish(settings))

    real_drop = swap.drop_retired

    def drop_after_losing_the_connection(conn, dataset):
        """The server ends this backend between the swap's commit and the drop."""
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return real_drop(conn, dataset)

    monkeypatch.setattr(swap, "drop_retired", drop_after_losing_the_connection)
    with pytest.raises(psycopg.OperationalError):
        run_step(settings, publish_step)
    assert [t for t in staging_tables(settings) if "__retired_" in t], "the drop did not fail"

    monkeypatch.setattr(swap, "drop_retired", real_drop)
    redelivered = run_step(settings, publish_step)
    assert redelivered.result["status"] == "skipped"
    # the data table and, swapped with it, the lookup table (issue 15)
    assert sorted(redelivered.result["retired"]) == ["timezone__timezone_lookup__retired_l2",
                                                     "timezone__timezones__retired_l2"]
    assert staging_tables(settings) == []
    with psycopg.connect(settings.database_url) as db:
        (count,) = db.execute("SELECT count(*) FROM timezone.timezones").fetchone()
    assert count == manifest.timezone.features


def test_an_older_version_is_never_published_over_a_newer_one(
        clean_db, upstream_files, tmp_path):
    """Issue 12, item 1: run A pins V1 and loads it all, but its publish is lost; run B
    pins V2 and publishes; the sweep then re-sends A's publish."""
    from service.cli.status import render
    from service.dashboard.app import create_app
    from service.dashboard.server import serving
    from service.ledger.status import run_status

    settings = clean_db
    run_a = new_run(settings, "timezone")
    (lost_publish,) = set(drain(settings, [Next(FETCH, (run_a, "timezone")),
                                           Next(PLAN, (run_a, "timezone"))],
                                stop_before=PUBLISH))
    root, first = upstream_files
    with new_upstream_version(root, tmp_path) as second:
        run_b = new_run(settings, "timezone")
        drain(settings, [Next(FETCH, (run_b, "timezone")), Next(PLAN, (run_b, "timezone"))])
    assert second.timezone.features != first.timezone.features

    resent = run_step(settings, lost_publish)

    assert resent.result["status"] == "superseded"
    assert resent.result["by"] == run_b
    with psycopg.connect(settings.database_url) as db:
        (count,) = db.execute("SELECT count(*) FROM timezone.timezones").fetchone()
        status, error = db.execute("SELECT status, error FROM geoload.loads WHERE run_id = %s",
                                   (run_a,)).fetchone()
        run_a_status = run_status(db, None, run_a)
    assert count == second.timezone.features  # V2 stays live
    assert status == "superseded" and error is None
    assert staging_tables(settings) == []
    assert run_a_status is not None and run_a_status.finished
    assert run_a_status.status == "superseded"
    shown = render(run_a_status)
    assert f"superseded by run {run_b}" in shown, shown
    # A duplicate of the same publish changes nothing.
    assert run_step(settings, lost_publish).result["status"] == "skipped"
    with serving(create_app(settings), "127.0.0.1", 0) as dashboard:
        import requests

        page = requests.get(f"{dashboard.url}/runs/{run_a}", timeout=30).text
    assert 'status-superseded' in page and f"/runs/{run_b}" in page
