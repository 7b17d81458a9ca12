"""Scheduled refresh: a new upstream version is loaded once; an unchanged one never.

Against the real PostGIS, RabbitMQ and the loopback upstream server. Loads are
marked published by hand here (no workers), so that each test sets up exactly
the history it needs; ``test_two_schedulers_*`` goes through periodiq and workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path

import psycopg
import pytest
import shapely

from devtools.testdata.server import etag_for
from service import catalog
from service import settings as config
from service.errors import ConfigError, UpstreamUnavailable
from service.ledger import runs as run_ledger
from service.ledger.records import Known
from service.pipeline import refresh
from service.pipeline.broker import make_broker
from service.settings import Settings, to_env
from tests.conftest import ROOT, Workers, purge_queue, run_cli, staging_left, worker_env

GADM_PATH = "/gadm/gadm4.1/gadm_410-levels.zip"
DATASETS = catalog.resolve(catalog.refreshed(set()))  # what a first refresh checks


@pytest.fixture()
def fresh(clean_db: Settings, upstream) -> Iterator[Settings]:
    """A clean database, whose scheduled refresh checks both datasets by name (by default
    it would check only the published ones, and none is)."""
    purge_queue(clean_db)
    upstream.clear_faults()
    yield replace(clean_db, refresh_datasets=("gadm", "timezone"))
    upstream.clear_faults()


@pytest.fixture()
def broker(fresh: Settings):
    broker = make_broker(fresh)
    yield broker
    broker.close()


def source_file(upstream, dataset: str, settings: Settings) -> Path:
    from urllib.parse import urlsplit

    from service.fetch.mirror import source_url

    return upstream.root / urlsplit(source_url(catalog.get(dataset), settings)).path.lstrip("/")


@contextmanager
def new_upstream_version(path: Path) -> Iterator[None]:
    """Upstream republishes the file: its mtime, hence its ETag, changes; restored after."""
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 7_000_000_000))
    try:
        yield
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def publish_as_loaded(db: psycopg.Connection, settings: Settings, upstream,
                      names: list[str]) -> str:
    """A run whose loads are published with the validators upstream serves right now."""
    datasets = catalog.resolve(names)
    run_id = run_ledger.create(db, names, {d.name: d.release(settings) for d in datasets},
                               origin="test")
    for name in names:
        path = source_file(upstream, name, settings)
        db.execute("UPDATE geoload.loads SET status = 'published', finished_at = now(), "
                   "etag = %s, last_modified = %s, sha256 = 'x', bytes = %s "
                   "WHERE run_id = %s AND dataset = %s",
                   (etag_for(path), formatdate(path.stat().st_mtime, usegmt=True),
                    path.stat().st_size, run_id, name))
    return run_id


def runs(db: psycopg.Connection, origin: str | None = None) -> list[tuple[str, list[str]]]:
    rows = db.execute("SELECT run_id, datasets FROM geoload.runs WHERE %s::text IS NULL "
                      "OR origin = %s ORDER BY created_at", (origin, origin)).fetchall()
    return [(r, list(d)) for r, d in rows]


def actions(outcome: refresh.Refreshed) -> dict[str, str]:
    return {d.dataset: d.action for d in outcome.decisions}


def test_nothing_published_yet_loads_every_dataset(fresh, broker, db):
    outcome = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
    assert actions(outcome) == {"gadm": "load", "timezone": "load"}
    assert runs(db) == [(outcome.run_id, ["gadm", "timezone"])]
    claims = db.execute("SELECT dataset, version, run_id FROM geoload.refreshes "
                        "ORDER BY dataset").fetchall()
    assert [(c[0], c[2]) for c in claims] == [("gadm", outcome.run_id),
                                              ("timezone", outcome.run_id)]
    assert claims[1][1].startswith(f"{fresh.timezone_release}|etag:")


def test_unchanged_upstream_enqueues_nothing_and_costs_a_304(fresh, broker, db, upstream):
    before = publish_as_loaded(db, fresh, upstream, ["gadm", "timezone"])
    upstream.clear_log()
    outcome = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
    assert actions(outcome) == {"gadm": "unchanged", "timezone": "unchanged"}
    assert outcome.run_id is None
    assert [r for r, _ in runs(db)] == [before]
    asked = upstream.requests(GADM_PATH)
    assert [(r.method, r.status) for r in asked] == [("GET", 304)]
    assert asked[0].headers.get("If-None-Match") == etag_for(source_file(upstream, "gadm", fresh))
    assert asked[0].bytes_sent == 0


def test_new_etag_starts_one_run_and_a_redelivered_tick_none(fresh, broker, db, upstream):
    publish_as_loaded(db, fresh, upstream, ["gadm", "timezone"])
    with new_upstream_version(source_file(upstream, "gadm", fresh)):
        first = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
        again = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
    assert actions(first) == {"gadm": "load", "timezone": "unchanged"}
    assert runs(db, "scheduler") == [(first.run_id, ["gadm"])]
    assert actions(again) == {"gadm": "taken", "timezone": "unchanged"}
    assert again.run_id is None
    assert {d.dataset: d.run_id for d in again.decisions}["gadm"] == first.run_id


def test_a_new_release_tag_is_a_new_version(fresh, broker, db, upstream):
    publish_as_loaded(db, fresh, upstream, ["gadm", "timezone"])
    db.execute("UPDATE geoload.loads SET release = '2026b' WHERE dataset = 'timezone'")
    outcome = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
    assert actions(outcome) == {"gadm": "unchanged", "timezone": "load"}
    [asked] = upstream.requests(source_file(upstream, "timezone", fresh).relative_to(
        upstream.root).as_posix())[-1:]
    assert "If-None-Match" not in asked.headers  # another release's validators don't apply


def test_concurrent_checks_of_one_version_start_exactly_one_run(fresh, db):
    outcomes: list[refresh.Refreshed] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def scheduler() -> None:
        try:
            broker = make_broker(fresh)
            with psycopg.connect(fresh.database_url, autocommit=True) as conn:
                start.wait()
                outcomes.append(refresh.refresh(fresh, conn, broker, DATASETS,
                                                origin="scheduler"))
            broker.close()
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(outcomes) == 6
    loaded = sorted(name for _, names in runs(db) for name in names)
    assert loaded == ["gadm", "timezone"]  # each version in one run (one check may win each)
    for dataset in ("gadm", "timezone"):
        mine = [d for o in outcomes for d in o.decisions if d.dataset == dataset]
        assert sorted(d.action for d in mine) == ["load"] + ["taken"] * 5


def test_a_version_whose_run_failed_is_tried_again_once(fresh, broker, db):
    first = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
    db.execute("UPDATE geoload.loads SET status = 'failed' WHERE run_id = %s AND dataset = 'gadm'",
               (first.run_id,))
    retry = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
    third = refresh.refresh(fresh, db, broker, DATASETS, origin="scheduler")
    assert actions(retry) == {"gadm": "load", "timezone": "taken"}
    assert runs(db)[-1] == (retry.run_id, ["gadm"])
    assert actions(third) == {"gadm": "taken", "timezone": "taken"}
    attempts = db.execute("SELECT attempts FROM geoload.refreshes WHERE dataset = 'gadm'")
    assert attempts.fetchone() == (2,)


def test_a_claim_whose_claimer_died_is_taken_over_after_a_while(fresh, broker, db):
    first = refresh.refresh(fresh, db, broker, DATASETS[:1], origin="scheduler")
    db.execute("UPDATE geoload.refreshes SET run_id = NULL")  # died between claim and run
    soon = refresh.refresh(fresh, db, broker, DATASETS[:1], origin="scheduler")
    db.execute("UPDATE geoload.refreshes SET claimed_at = now() - make_interval(secs => %s)",
               (refresh.STALE_CLAIM_S + 1,))
    later = refresh.refresh(fresh, db, broker, DATASETS[:1], origin="scheduler")
    assert first.run_id and soon.run_id is None and later.run_id
    assert "starting a run" in soon.decisions[0].reason


def test_one_upstream_down_does_not_hold_up_the_other(fresh, broker, db, upstream):
    upstream.fault(GADM_PATH, "status", status=503)
    with pytest.raises(UpstreamUnavailable, match="gadm"):
        refresh.tick(fresh, broker)
    [(run_id, datasets)] = runs(db, "scheduler")
    assert datasets == ["timezone"]
    upstream.clear_faults()
    retried = refresh.tick(fresh, broker)
    assert {d["dataset"]: d["action"] for d in retried["decisions"]} == {
        "gadm": "load", "timezone": "taken"}


def test_upstream_without_validators_is_loaded_once_per_release(fresh, broker, db, upstream):
    upstream.fault(GADM_PATH, "status", status=200, body=b"PK\x03\x04 no validators")
    first = refresh.refresh(fresh, db, broker, DATASETS[:1], origin="scheduler")
    assert actions(first) == {"gadm": "load"}
    assert first.decisions[0].version == "|unvalidated"
    db.execute("UPDATE geoload.loads SET status = 'published', finished_at = now() "
               "WHERE run_id = %s", (first.run_id,))
    later = refresh.refresh(fresh, db, broker, DATASETS[:1], origin="scheduler")
    assert actions(later) == {"gadm": "unchanged"}
    assert "neither ETag nor Last-Modified" in later.decisions[0].reason


def test_same_version_compares_release_then_etag_then_last_modified():
    def up(release, etag, modified):
        return refresh.Upstream("d", "u", release, etag, modified)

    def known(release, etag, modified):
        return Known("r", "published", release, etag, modified, None, None, None)

    assert refresh.same_version(up("a", '"1"', None), known("a", 'W/"1"', None))
    assert not refresh.same_version(up("b", '"1"', None), known("a", '"1"', None))
    assert not refresh.same_version(up("a", '"2"', "Mon"), known("a", '"1"', "Mon"))
    assert refresh.same_version(up(None, None, "Mon"), known(None, None, "Mon"))
    assert refresh.same_version(up(None, None, None), known(None, '"1"', None))


def test_a_bad_cron_setting_is_named(settings):
    with pytest.raises(ConfigError, match="GEOLOAD_REFRESH_CRON"):
        refresh.schedule(replace(settings, refresh_cron="every night"))
    assert str(refresh.schedule(settings)) == settings.refresh_cron


def test_enqueue_if_changed_does_the_same_check_by_hand(fresh, db):
    first = run_cli("service.enqueue", "--if-changed", "--json", settings=fresh, timeout=60)
    again = run_cli("service.enqueue", "--if-changed", "timezone", settings=fresh, timeout=60)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert {d["dataset"]: d["action"] for d in result["decisions"]} == {
        "gadm": "load", "timezone": "load"}
    assert runs(db, "cli") == [(result["run_id"], ["gadm", "timezone"])]
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"timezone: taken (run {result['run_id']})")
    assert len(runs(db)) == 1


def test_the_scheduler_starts_strict_loads_when_geoload_strict_is_set(fresh, broker, db):
    """GEOLOAD_STRICT is read by the tick, and fixed on each load it starts; workers read it
    from the load, never from their own environment."""
    lenient = refresh.tick(fresh, broker)
    db.execute("DELETE FROM geoload.refreshes")
    strict = refresh.tick(config.from_env({**to_env(fresh), "GEOLOAD_STRICT": "1"}), broker)
    by_run = dict(db.execute("SELECT run_id, bool_and(strict) FROM geoload.loads "
                             "GROUP BY run_id").fetchall())
    assert by_run == {lenient["run_id"]: False, strict["run_id"]: True}


@contextmanager
def upstream_serves(path: Path, crafted: Path) -> Iterator[None]:
    """Upstream publishes ``crafted`` at ``path`` (a new ETag) until the block ends."""
    backup = path.with_name(path.name + ".good")
    path.rename(backup)
    crafted.replace(path)
    try:
        yield
    finally:
        backup.replace(path)


def _zones(db: psycopg.Connection) -> tuple[object, ...] | None:
    return db.execute("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY tzid), "
                      "'')) FROM timezone.timezones t").fetchone()


@pytest.mark.e2e
def test_a_scheduled_strict_load_of_an_unloadable_feature_fails_and_keeps_the_old_data(
        workers, db, upstream, tmp_path):
    """GEOLOAD_STRICT=1 on the scheduler alone (the workers run without it): the load the
    tick starts refuses a feature with no polygonal part, and the live table stays."""
    from tests.support import craft

    zones = replace(workers.settings, refresh_datasets=("timezone",))
    broker = make_broker(zones)
    try:
        first = refresh.tick(zones, broker)
        assert run_cli("service.status", first["run_id"], "--wait", settings=zones,
                       timeout=240).returncode == 0
        before = _zones(db)
        path = source_file(upstream, "timezone", zones)
        bad = craft.craft_timezone(path, tmp_path / "bad.zip", craft.set_geometry(
            2, shapely.Polygon([(0, 0), (1, 1), (2, 2), (0, 0)])))
        with upstream_serves(path, bad):
            strict = refresh.tick(config.from_env({**to_env(zones), "GEOLOAD_STRICT": "1"}),
                                  broker)
            waited = run_cli("service.status", strict["run_id"], "--wait", settings=zones,
                             timeout=240)
    finally:
        broker.close()
    assert waited.returncode == 1, waited.stdout + waited.stderr
    status, is_strict, step, error = db.execute(
        "SELECT status, strict, error_step, error FROM geoload.loads WHERE run_id = %s",
        (strict["run_id"],)).fetchone()
    assert (status, is_strict, step) == ("failed", True, "load_chunk")
    assert ("layer 'combined-shapefile-with-oceans': 1 feature(s) has no polygonal part even "
            "after make_valid (fid 2)") in error
    assert _zones(db) == before
    assert staging_left(db) == 0  # dropped by the failure path, which a chunk may trail


def test_enqueue_strict_is_recorded_on_the_loads(fresh, db):
    done = run_cli("service.enqueue", "--if-changed", "--strict", "gadm", settings=fresh,
                   timeout=60)
    assert done.returncode == 0, done.stderr
    plain = run_cli("service.enqueue", "timezone", settings=fresh, timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert db.execute("SELECT dataset, strict FROM geoload.loads ORDER BY dataset").fetchall(
    ) == [("gadm", True), ("timezone", False)]


def _periodiq(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(settings, GEOLOAD_REFRESH_CRON="* * * * *", GEOLOAD_WORKER_METRICS="0")
    periodiq = str(Path(sys.executable).with_name("periodiq"))
    return subprocess.Popen([periodiq, "actors"], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


@pytest.fixture()
def workers(clean_db: Settings) -> Iterator[Workers]:
    """Workers whose refresh checks both datasets by name (none is published yet)."""
    purge_queue(clean_db)
    group = Workers(replace(clean_db, refresh_datasets=("gadm", "timezone")))
    group.wait_ready()
    yield group
    group.stop()


@pytest.mark.e2e
def test_two_schedulers_load_a_new_version_once(workers, db, tmp_path):
    """Both schedulers tick (periodiq sends at start when the cron matches): one run only."""
    logs = [tmp_path / "scheduler-1.log", tmp_path / "scheduler-2.log"]
    schedulers = [_periodiq(workers.settings, log) for log in logs]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in schedulers), logs[0].read_text()[-2000:]
            done = db.execute("SELECT count(*) FROM geoload.loads d JOIN geoload.runs r "
                              "USING (run_id) WHERE r.origin = 'scheduler' "
                              "AND d.status = 'published'").fetchone()
            checked = workers.log.read_text(errors="replace").count("refresh gadm:")
            if done == (2,) and checked >= 2:
                break
            time.sleep(1)
    finally:
        for proc in schedulers:
            _stop(proc)
    assert all("Scheduling" in log.read_text() for log in logs), logs[0].read_text()
    assert len(runs(db)) == 1, runs(db)
    assert db.execute("SELECT count(*) FROM geoload.refreshes").fetchone() == (2,)
    text = workers.log.read_text(errors="replace")
    assert text.count("refresh gadm: load run") == 1 and text.count("refresh gadm:") >= 2
    broker = make_broker(workers.settings)
    try:
        after = refresh.refresh(workers.settings, db, broker, DATASETS, origin="scheduler")
    finally:
        broker.close()
    assert actions(after) == {"gadm": "unchanged", "timezone": "unchanged"}


def test_a_claim_is_handed_on_once_its_load_is_not_the_live_one(fresh, broker, db, upstream):
    """Issue 12, item 1: a version's claim held by a load that was superseded, or that was
    published and then replaced, doesn't mean the version is live."""
    first = refresh.refresh(fresh, db, broker, DATASETS[1:], origin="scheduler")
    assert actions(first) == {"timezone": "load"}
    # A load fetched later published another version: the claimed one was superseded.
    db.execute("UPDATE geoload.loads SET status = 'superseded', finished_at = now() "
               "WHERE run_id = %s", (first.run_id,))
    other = publish_as_loaded(db, fresh, upstream, ["timezone"])
    db.execute("UPDATE geoload.loads SET etag = '\"another version\"' WHERE run_id = %s",
               (other,))
    second = refresh.refresh(fresh, db, broker, DATASETS[1:], origin="scheduler")
    assert actions(second) == {"timezone": "load"}
    # That run publishes the version; later another version replaces it.
    path = source_file(upstream, "timezone", fresh)
    db.execute("UPDATE geoload.loads SET status = 'published', finished_at = now(), etag = %s, "
               "last_modified = %s WHERE run_id = %s",
               (etag_for(path), formatdate(path.stat().st_mtime, usegmt=True), second.run_id))
    assert actions(refresh.refresh(fresh, db, broker, DATASETS[1:], origin="scheduler")) == {
        "timezone": "unchanged"}
    replaced = publish_as_loaded(db, fresh, upstream, ["timezone"])
    db.execute("UPDATE geoload.loads SET etag = '\"a third version\"' WHERE run_id = %s",
               (replaced,))
    third = refresh.refresh(fresh, db, broker, DATASETS[1:], origin="scheduler")
    assert actions(third) == {"timezone": "load"}, third.decisions
    attempts = db.execute("SELECT attempts FROM geoload.refreshes WHERE dataset = 'timezone'")
    assert attempts.fetchone() == (3,)


def _publish_by_hand(db: psycopg.Connection, settings: Settings, dataset: str) -> str:
    from service.ledger import schema

    schema.ensure(db)
    run_id = run_ledger.create(db, [dataset], {dataset: None}, origin="test")
    db.execute("UPDATE geoload.loads SET status = 'published', finished_at = now() "
               "WHERE run_id = %s RETURNING load_id", (run_id,))
    db.execute("INSERT INTO geoload.live (dataset, load_id, run_id, published_at) "
               "SELECT dataset, load_id, run_id, now() FROM geoload.loads WHERE run_id = %s",
               (run_id,))
    return run_id


def test_the_refresh_checks_what_geoload_refresh_datasets_chose(fresh, db):
    by_default = replace(fresh, refresh_datasets=("published",))

    def chosen(settings: Settings) -> list[tuple[str, str]]:
        return [(t.dataset.name, t.why) for t in refresh.targets(settings, db)]

    _publish_by_hand(db, fresh, "gadm")
    db.execute("TRUNCATE geoload.live")
    assert chosen(by_default) == []  # nothing published yet
    _publish_by_hand(db, fresh, "timezone")
    assert chosen(by_default) == [("timezone", "published at least once")]
    assert chosen(replace(fresh, refresh_datasets=("gadm", "published"))) == [
        ("gadm", "named in GEOLOAD_REFRESH_DATASETS"), ("timezone", "published at least once")]
    assert chosen(replace(fresh, refresh_datasets=())) == []
    with pytest.raises(ConfigError, match="gadn"):
        chosen(replace(fresh, refresh_datasets=("gadn",)))


def test_an_empty_choice_turns_the_refresh_off(fresh, db):
    off = refresh.tick(replace(fresh, refresh_datasets=()), broker=None)
    assert off == {"status": "off", "datasets": [],
                   "reason": "GEOLOAD_REFRESH_DATASETS is empty"}
    nothing = refresh.tick(replace(fresh, refresh_datasets=("published",)), broker=None)
    assert nothing["reason"] == "no dataset published yet"
    assert runs(db) == []


def test_the_default_refresh_checks_only_the_published_dataset(fresh, broker, db):
    first = _publish_by_hand(db, fresh, "timezone")
    outcome = refresh.tick(replace(fresh, refresh_datasets=("published",)), broker)
    assert [d["dataset"] for d in outcome["decisions"]] == ["timezone"]
    assert all(datasets == ["timezone"] for _, datasets in runs(db) if _ != first)


def _publish_with_options(db: psycopg.Connection, settings: Settings, upstream, dataset: str,
                          **chosen) -> str:
    """Like :func:`publish_as_loaded` for one dataset enqueued with ``chosen`` options
    (levels, schema, source), made live in its schema."""
    from service.catalog.options import resolve

    opts = resolve(catalog.get(dataset), settings, **chosen)
    run_id = run_ledger.create(db, [dataset], {}, origin="test", options={dataset: opts})
    path = source_file(upstream, dataset, settings)
    db.execute("UPDATE geoload.loads SET status = 'published', finished_at = now(), "
               "etag = %s, last_modified = %s, sha256 = 'x', bytes = %s WHERE run_id = %s",
               (etag_for(path), formatdate(path.stat().st_mtime, usegmt=True),
                path.stat().st_size, run_id))
    db.execute("INSERT INTO geoload.live (dataset, target_schema, load_id, run_id, published_at) "
               "SELECT dataset, coalesce(target_schema, ''), load_id, run_id, now() "
               "FROM geoload.loads WHERE run_id = %s", (run_id,))
    return run_id


def test_the_default_refresh_loads_each_published_choice_again_with_its_options(
        fresh, broker, db, upstream, tmp_path):
    by_default = replace(fresh, refresh_datasets=("published",))
    _publish_with_options(db, fresh, upstream, "gadm")
    _publish_with_options(db, fresh, upstream, "gadm", levels=(0, 1), schema="mine")
    own = tmp_path / "own.zip"
    own.write_bytes(source_file(upstream, "timezone", fresh).read_bytes())
    _publish_with_options(db, fresh, upstream, "timezone", source=str(own))

    chosen = refresh.targets(by_default, db)
    # A load of one's own file has no upstream to check: it is left alone.
    assert [(t.dataset.name, t.schema) for t in chosen] == [("gadm", ""), ("gadm", "mine")]
    assert chosen[1].options is not None and chosen[1].options.levels == (0, 1)
    assert chosen[1].label == "gadm (levels 0,1 · schema mine)"

    unchanged = refresh.tick(by_default, broker)
    assert [d["action"] for d in unchanged["decisions"]] == ["unchanged", "unchanged"]
    before = {r for r, _ in runs(db)}

    with new_upstream_version(source_file(upstream, "gadm", fresh)):
        changed = refresh.tick(by_default, broker)
        again = refresh.tick(by_default, broker)  # both claims are taken: nothing more starts
    assert [d["action"] for d in again["decisions"]] == ["taken", "taken"]
    assert [(d["schema"], d["action"]) for d in changed["decisions"]] == [
        ("", "load"), ("mine", "load")]
    started = [r for r, _ in runs(db) if r not in before]
    assert len(started) == 2  # a run holds one load per dataset
    loads = db.execute("SELECT coalesce(target_schema, ''), options->'levels', "
                       "options->>'schema', release FROM geoload.loads WHERE run_id = ANY(%s) "
                       "ORDER BY 1", (started,)).fetchall()
    release = catalog.get("gadm").release(fresh)
    assert loads == [("", [], None, release), ("mine", [0, 1], "mine", release)]
    assert {r for r, _ in runs(db)} == before | set(started)


def test_enqueue_if_changed_checks_and_loads_the_choice_named(fresh, db, upstream):
    """``--if-changed gadm --levels 0-1 --schema mine`` checks that choice (against what was
    loaded into schema mine) and loads it with those options; nothing else is asked about."""
    _publish_with_options(db, fresh, upstream, "gadm")
    _publish_with_options(db, fresh, upstream, "gadm", levels=(0, 1), schema="mine")
    before = {r for r, _ in runs(db)}
    args = ("service.enqueue", "--if-changed", "gadm", "--levels", "0-1", "--schema", "mine",
            "--json")
    same = run_cli(*args, settings=fresh, timeout=60)
    assert same.returncode == 0, same.stderr
    assert [(d["dataset"], d["schema"], d["action"]) for d in json.loads(same.stdout)[
        "decisions"]] == [("gadm", "mine", "unchanged")]
    assert {r for r, _ in runs(db)} == before  # nothing changed: nothing loaded

    with new_upstream_version(source_file(upstream, "gadm", fresh)):
        changed = run_cli(*args, settings=fresh, timeout=60)
    assert changed.returncode == 0, changed.stderr
    result = json.loads(changed.stdout)
    assert [(d["dataset"], d["schema"], d["action"]) for d in result["decisions"]] == [
        ("gadm", "mine", "load")]
    loads = db.execute("SELECT dataset, coalesce(target_schema, ''), options->'levels', "
                       "options->>'schema' FROM geoload.loads WHERE run_id = %s",
                       (result["run_id"],)).fetchall()
    assert loads == [("gadm", "mine", [0, 1], "mine")]


def test_enqueue_if_changed_alone_checks_what_the_scheduler_would(fresh, db, upstream):
    by_default = replace(fresh, refresh_datasets=("published",))
    _publish_with_options(db, fresh, upstream, "gadm", levels=(0, 1), schema="mine")
    done = run_cli("service.enqueue", "--if-changed", "--json", settings=by_default, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [(d["dataset"], d["schema"], d["action"]) for d in json.loads(done.stdout)[
        "decisions"]] == [("gadm", "mine", "unchanged")]
    unnamed = run_cli("service.enqueue", "--if-changed", "--schema", "mine", settings=fresh,
                      timeout=60)
    assert unnamed.returncode == 2
    assert "--if-changed" in unnamed.stderr and "name the dataset" in unnamed.stderr
