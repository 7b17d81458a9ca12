"""HTTP-level tests of every dashboard endpoint, against real PostGIS, Redis and RabbitMQ."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace

import pika
import psycopg
import pytest
import requests

from service.dashboard.preview import MAX_FEATURES
from service.dashboard.server import Server
from service.identity import worker_id
from service.ledger import chunks, layers, loads, runs
from service.load.columns import Column
from service.load.records import Chunk, LayerPlan, PlannedLayer
from tests.conftest import Workers, run_cli
from tests.service.dashboard.support import (
    GADM_PATH,
    Client,
    History,
    start_run,
    wait_run,
    with_queue,
)

pytestmark = pytest.mark.e2e


# --- pages and their JSON -------------------------------------------------------------------

def test_runs_list_newest_first_with_status_duration_and_datasets(
        client: Client, history: History) -> None:
    data = client.get("/api/runs").json()
    listed = [r["run_id"] for r in data["runs"]]
    assert listed[:2] == [history.failed, history.succeeded]
    ok = data["runs"][1]
    assert ok["status"] == "succeeded" and ok["percent"] == 100.0
    assert ok["datasets"] == [{"dataset": "timezone", "status": "published"}]
    assert ok["duration_s"] > 0 and ok["created_at"] and ok["finished_at"]
    assert data["runs"][0]["status"] == "failed"
    assert client.get("/api/runs?limit=1").json()["runs"][0]["run_id"] == history.failed
    assert client.get("/api/runs?limit=x").status_code == 400

    page = client.get("/runs", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.text.index(history.failed) < page.text.index(history.succeeded)
    assert 'class="badge status-succeeded"' in page.text and 'data-live="2000"' in page.text


def test_run_page_shows_progress_per_dataset_and_layer(client: Client, history: History) -> None:
    data = client.get(f"/api/runs/{history.succeeded}").json()
    assert data["status"] == "succeeded" and data["finished"] is True
    dataset = data["datasets"][0]
    assert dataset["loaded"] == dataset["total"] == history.features
    assert dataset["percent"] == 100.0 and dataset["eta_s"] == 0.0
    assert dataset["features_per_s"] > 0
    for layer in dataset["layers"]:
        assert layer["percent"] == 100.0 and layer["chunks_done"] == layer["chunks_total"]
        assert layer["attempts"] >= layer["chunks_total"] and layer["failed_chunks"] == 0
        assert layer["features_per_s"] > 0
    assert "***" not in (dataset["source_url"] or "")

    page = client.get(f"/runs/{history.succeeded}").text
    assert re.search(r'data-percent="100\.0" data-key="timezone"', page)
    # the run's load was timezone's first: its change report says there is nothing to compare
    assert dataset["changes"]["first_load"] is True
    first = ('<p class="note" data-test="first-load">First load of timezone: nothing to '
             'compare with, no change report.</p>')
    for shown in (page, client.get("/datasets").text):
        card = shown.split('data-dataset="timezone"', 1)[1].split("</section>", 1)[0]
        assert first in card
    fragment = client.get(f"/runs/{history.succeeded}?fragment=1").text
    assert fragment.startswith('<main id="main">')  # finished: no data-live, polling stops
    assert "<html" not in fragment


def test_failed_run_page_offers_retry(client: Client, history: History) -> None:
    data = client.get(f"/api/runs/{history.failed}").json()
    failed = data["datasets"][0]
    assert data["status"] == "failed" and failed["status"] == "failed"
    assert failed["error_step"] == "fetch_source" and "404" in failed["error"]
    page = client.get(f"/runs/{history.failed}").text
    assert f'action="/api/runs/{history.failed}/retry"' in page
    assert f'action="/api/runs/{history.failed}/datasets/gadm/retry"' in page


def test_unknown_run_is_404_as_json_and_html(client: Client) -> None:
    response = client.get("/api/runs/20990101T000000-abcdef")
    assert response.status_code == 404 and "no run" in response.json()["error"]
    page = client.get("/runs/nope", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "<h1>404</h1>" in page.text
    assert client.get("/nowhere").status_code == 404


def test_datasets_show_version_counts_size_and_previews(
        client: Client, history: History, upstream_files: tuple) -> None:
    data = {d["dataset"]: d for d in client.get("/api/datasets").json()["datasets"]}
    tz = data["timezone"]
    assert tz["loaded"] is True and tz["version"]["release"] == "2026c"
    assert tz["version"]["etag"] and tz["version"]["run_id"] == history.succeeded
    assert tz["version"]["sha256"] == upstream_files[1].timezone.sha256
    assert tz["version"]["finished_at"] and tz["version"]["fetched_at"]
    (layer,) = tz["layers"]
    assert layer["rows"] == history.features == layer["source"]
    assert layer["table_bytes"] > 0 and layer["repaired"] is not None
    assert layer["parts_dropped"] is not None
    assert layer["preview"] == "/datasets/timezone/combined-shapefile-with-oceans/preview.svg"
    gadm = data["gadm"]
    assert gadm["loaded"] is False and gadm["latest_attempt"]["status"] == "failed"
    assert gadm["latest_attempt"]["run_id"] == history.failed

    page = client.get("/datasets").text
    assert f'<img src="{layer["preview"]}"' in page and "Not loaded yet." in page
    assert 'data-test="load-gadm"' in page


def test_preview_is_a_bounded_svg_where_the_data_is(client: Client, history: History) -> None:
    response = client.get("/datasets/timezone/combined-shapefile-with-oceans/preview.svg")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    svg = ET.fromstring(response.content)
    paths = svg.findall("{http://www.w3.org/2000/svg}path")
    assert 0 < len(paths) <= MAX_FEATURES
    assert int(svg.get("data-features", "0")) == len(paths)
    x, y, w, h = map(float, svg.get("viewBox", "").split())
    assert x > -200 and x + w < 200 and y > -100 and y + h < 100  # lon/lat, y flipped
    assert client.get("/datasets/gadm/ADM_0/preview.svg").status_code == 404  # not loaded
    assert client.get("/datasets/nope/x/preview.svg").status_code == 404


def test_failures_show_error_dataset_step_attempts_and_dead_letters(
        client: Client, history: History) -> None:
    data = client.get("/api/failures").json()
    failure = next(f for f in data["failures"] if f["run_id"] == history.failed)
    assert failure["dataset"] == "gadm" and failure["error_step"] == "fetch_source"
    assert "404" in failure["error"] and failure["error_type"]
    assert failure["attempts"] == 1  # a 404 is permanent: no retry
    assert failure["retried_by"] is None
    letter = next(m for m in data["dead_letters"] if m.get("run_id") == history.failed)
    assert letter["actor"] == "fetch_source" and letter["dataset"] == "gadm"
    assert data["dead_letter_queue"] == history.settings.queue + ".XQ" and data["error"] is None

    page = client.get("/failures").text
    assert history.failed in page and "fetch_source" in page
    assert f'/api/dead-letters/{letter["message_id"]}/requeue' in page


def test_a_failed_chunk_names_its_layer_chunk_attempts_and_worker(
        client: Client, history: History) -> None:
    """The ledger calls a worker makes when a chunk fails three times, then for good."""
    with psycopg.connect(history.settings.database_url, autocommit=True) as conn:
        run_id = runs.create(conn, ["gadm"], {"gadm": None}, origin="test")
        load = loads.get(conn, run_id, "gadm")
        assert load is not None
        plan = LayerPlan("ADM_2", "gadm.adm_2", "gadm__adm_2__test", "GPKG", "fid",
                         [Column("geom", "__wkb", "geometry")], 10)
        with conn.transaction():
            layers.save_plan(conn, load.load_id, [PlannedLayer(
                plan, [Chunk(1, 5, 5, 100), Chunk(6, 10, 5, 100)])])
        for _ in range(3):
            chunks.start_attempt(conn, load.load_id, "ADM_2", 1)
        with conn.transaction():
            chunks.fail(conn, load.load_id, "ADM_2", 1, "BadSource: a broken ring")
            loads.fail(conn, load.load_id, "BadSource: a broken ring", "BadSource",
                       "load_chunk")
    failure = next(f for f in client.get("/api/failures").json()["failures"]
                   if f["run_id"] == run_id)
    assert (failure["layer"], failure["chunk_no"], failure["attempts"]) == ("ADM_2", 1, 3)
    assert failure["worker"] == worker_id() and failure["error_step"] == "load_chunk"
    (layer,) = client.get(f"/api/runs/{run_id}").json()["datasets"][0]["layers"]
    assert layer["failed_chunks"] == 1 and layer["attempts"] == 3 and layer["eta_s"] is None
    assert "ADM_2 #1" in client.get("/failures").text


def test_queues_and_workers(client: Client, history: History) -> None:
    data = client.get("/api/queues").json()
    assert data["error"] is None
    queue = data["queue"]
    assert queue["queue"] == history.settings.queue and queue["exists"] is True
    assert {"ready", "unacked", "delayed", "dead", "consumers"} <= set(queue)
    assert data["management_ui"].startswith("http://127.0.0.1:15672/#/queues/%2F/")
    assert "guest" not in data["management_ui"]
    alive = [w for w in data["workers"] if w["alive"]]
    assert len(alive) >= 2 and all(w["last_seen_s"] < 15 for w in alive)
    assert all(w["metrics"].endswith(":9191/metrics") for w in alive)
    page = client.get("/queues").text
    assert "open the RabbitMQ management UI" in page and "status-alive" in page


def test_metrics(client: Client, history: History) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "text/plain")
    text = response.text
    loaded = re.search(r'geoload_features_loaded_total\{dataset="timezone",layer="[^"]+"\} '
                       r"([0-9.e+]+)", text)
    assert loaded and float(loaded.group(1)) >= history.features
    assert re.search(r'geoload_runs\{status="failed"\} [1-9]', text)
    assert re.search(r'geoload_runs\{status="succeeded"\} [1-9]', text)
    assert re.search(r'geoload_load_failures_total\{dataset="gadm",step="fetch_source"\} [1-9]',
                     text)
    assert re.search(r'geoload_fetched_bytes_total\{dataset="timezone"\} [1-9]', text)
    assert re.search(r'geoload_last_load_features_per_second\{dataset="timezone"\} [1-9]', text)
    assert re.search(r'geoload_queue_messages\{queue="[^"]+",state="dead"\} ', text)
    assert re.search(r'geoload_workers\{state="alive"\} [2-9]', text)
    assert 'geoload_source_up{source="postgis"} 1.0' in text


def test_static_files_and_root(client: Client) -> None:
    assert client.get("/").headers["Location"] == "/runs"
    js = client.get("/static/dashboard.js")
    assert js.status_code == 200 and "fragment" in js.text
    assert client.get("/static/dashboard.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/healthz").json() == {"ok": True}


# --- actions, CSRF and POST-only ------------------------------------------------------------

def test_actions_are_post_only(client: Client, history: History) -> None:
    assert client.get(f"/api/runs/{history.failed}/retry").status_code == 405
    assert client.get("/api/dead-letters/all/discard").status_code == 405
    refused = client.post("/runs", headers={"X-CSRF-Token": client.csrf()})
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET"


def test_csrf_refusals(client: Client, history: History) -> None:
    action = f"/api/runs/{history.failed}/retry"
    assert client.post(action).status_code == 403  # no token, no cookie
    token = client.csrf()
    other = Client(client.base)
    assert other.post(action, headers={"X-CSRF-Token": token}).status_code == 403  # no cookie
    assert client.post(action, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    for bad in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                {"Referer": "http://evil.example/page"}, {"Sec-Fetch-Site": "cross-site"}):
        response = client.post(action, headers={"X-CSRF-Token": token, **bad})
        assert response.status_code == 403, bad
        assert response.json()["error"] in ("cross-site request refused",)
    # accepted: the refusal below comes from validation, past CSRF
    response = client.post("/api/runs", json={"datasets": ["nope"]},
                           headers={"X-CSRF-Token": token, "Origin": client.base})
    assert response.status_code == 400 and "unknown dataset" in response.json()["error"]
    assert client.post("/api/runs", json={}, headers={"X-CSRF-Token": token}).status_code == 400


def test_retry_refused_for_a_run_that_did_not_fail(client: Client, history: History) -> None:
    token = client.csrf()
    response = client.post(f"/api/runs/{history.succeeded}/retry",
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 409
    response = client.post(f"/api/runs/{history.succeeded}/datasets/timezone/retry",
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 409
    assert client.post("/api/runs/nope/retry", headers={"X-CSRF-Token": token}
                       ).status_code == 404


def test_retry_by_form_and_by_json_start_new_runs(client: Client, history: History,
                                                  upstream) -> None:
    """The 404 stays armed, so the retries fail fast; what matters is what they record."""
    upstream.fault(GADM_PATH, "status", status=404)
    try:
        form = client.post(f"/api/runs/{history.failed}/datasets/gadm/retry",
                           data={"csrf": client.csrf()}, headers={"Origin": client.base})
        assert form.status_code == 303
        first = form.headers["Location"].removeprefix("/runs/")
        response = client.post(f"/api/runs/{history.failed}/retry",
                               headers={"X-CSRF-Token": client.csrf()})
        assert response.status_code == 202
        second = response.json()
        assert second["retry_of"] == history.failed and second["datasets"] == ["gadm"]
        for run_id in (first, second["run_id"]):
            assert wait_run(history.settings, run_id).status == "failed"
            assert client.get(f"/api/runs/{run_id}").json()["retry_of"] == history.failed
    finally:
        upstream.clear_faults()
    failures = client.get("/api/failures").json()["failures"]
    original = next(f for f in failures if f["run_id"] == history.failed)
    assert original["retried_by"] in (first, second["run_id"])


def test_start_run_from_the_api(client: Client, history: History) -> None:
    response = client.post("/api/runs", json={"datasets": ["timezone"]},
                           headers={"X-CSRF-Token": client.csrf()})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert wait_run(history.settings, run_id).status == "succeeded"
    assert client.get(f"/api/runs/{run_id}").json()["origin"] == "dashboard"


def test_previews_of_every_gadm_level_are_sampled_to_a_bound(
        client: Client, history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loads gadm for real, so it runs after the tests that expect gadm not loaded."""
    from service.dashboard import preview

    run_id = start_run(history.settings, "gadm")
    assert wait_run(history.settings, run_id).status == "succeeded"
    monkeypatch.setattr(preview, "MAX_FEATURES", 100)
    layers = {d["dataset"]: d for d in client.get("/api/datasets").json()["datasets"]}["gadm"]
    for layer in layers["layers"]:
        response = client.get(layer["preview"])
        assert response.status_code == 200, layer
        svg = ET.fromstring(response.content)
        drawn = len(svg.findall("{http://www.w3.org/2000/svg}path"))
        assert 0 < drawn <= 100 and int(svg.get("data-total", "0")) == layer["rows"]
        if layer["rows"] > 300:
            assert drawn >= 50  # sampled across the table, not cut off empty


# --- dead letters ---------------------------------------------------------------------------

def _dead_letter(channel, queue: str, message_id: str) -> None:
    body = (f'{{"queue_name":"{queue}","actor_name":"fetch_source","args":["20990101T000000-'
            f'000000","timezone"],"kwargs":{{}},"options":{{"retries":3,"traceback":"Traceback'
            f'\\nBadMessage: gone"}},"message_id":"{message_id}","message_timestamp":1}}')
    channel.basic_publish("", queue + ".XQ", body.encode(),
                          pika.BasicProperties(delivery_mode=2))


def _depth(channel, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def test_dead_letters_requeue_and_discard(history: History, serve) -> None:
    """On a queue no worker consumes, so that a requeued message stays to be counted."""
    from service.pipeline.broker import make_broker

    settings = with_queue(history.settings, "dl")
    broker = make_broker(settings)
    broker.declare_queue(settings.queue, ensure=True)  # and its .DQ and .XQ, as workers do
    broker.close()
    client = Client(serve(settings).url)
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    try:
        for n in range(3):
            _dead_letter(channel, settings.queue, f"dead-{n}")
        listed = client.get("/api/failures").json()["dead_letters"]
        assert [m["message_id"] for m in listed] == ["dead-0", "dead-1", "dead-2"]
        assert listed[0]["attempts"] == 4 and listed[0]["error"] == "BadMessage: gone"
        token = client.csrf()
        moved = client.post("/api/dead-letters/dead-1/requeue", headers={"X-CSRF-Token": token})
        assert moved.json() == {"requeued": 1, "url": "/failures"}
        method, _, body = channel.basic_get(settings.queue, auto_ack=True)
        assert method is not None and b'"message_id":"dead-1"' in body
        assert b"retries" not in body and b"traceback" not in body  # a fresh retry budget
        assert client.post("/api/dead-letters/dead-0/discard",
                           headers={"X-CSRF-Token": token}).json()["discarded"] == 1
        assert client.post("/api/dead-letters/missing/discard",
                           headers={"X-CSRF-Token": token}).status_code == 404
        assert [m["message_id"] for m in client.get("/api/failures").json()["dead_letters"]
                ] == ["dead-2"]
        assert client.post("/api/dead-letters/all/discard",
                           headers={"X-CSRF-Token": token}).json()["discarded"] == 1
        assert _depth(channel, settings.queue + ".XQ") == 0
    finally:
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(settings.queue + suffix)
        connection.close()


# --- authentication and secrets -------------------------------------------------------------

TOKEN = "dashboard-token-7f3e9a"


def test_token_or_basic_auth_when_a_token_is_set(history: History, serve) -> None:
    server = serve(replace(history.settings, dashboard_token=TOKEN))
    url = server.url + "/api/runs"
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert TOKEN not in refused.text
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10
                        ).status_code == 401
    assert requests.get(url, auth=("anyone", "wrong"), timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).ok
    assert requests.get(url, auth=("anyone", TOKEN), timeout=10).ok
    assert requests.get(server.url + "/metrics", timeout=10).status_code == 401
    assert requests.post(server.url + "/api/runs", timeout=10).status_code == 401
    assert requests.get(server.url + "/healthz", timeout=10).ok


def test_refuses_to_start_beyond_loopback_without_a_token(settings) -> None:
    done = run_cli("service.dashboard", settings=settings, timeout=60,
                   GEOLOAD_DASHBOARD_HOST="0.0.0.0", GEOLOAD_DASHBOARD_TOKEN="")
    assert done.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0" in done.stderr
    assert "GEOLOAD_DASHBOARD_TOKEN" in done.stderr


def test_serves_beyond_loopback_with_a_token(settings, dashboard_process) -> None:
    process = dashboard_process(settings, GEOLOAD_DASHBOARD_HOST="0.0.0.0",
                                GEOLOAD_DASHBOARD_TOKEN=TOKEN)
    assert requests.get(process.url + "/api/runs", timeout=10).status_code == 401
    assert requests.get(process.url + "/api/runs", auth=("x", TOKEN), timeout=10).ok
    assert process.stop() == 0  # SIGTERM stops it cleanly


def test_loopback_dashboard_refuses_foreign_host_names(client: Client) -> None:
    """A page that rebinds its DNS name to 127.0.0.1 gets nothing."""
    response = client.get("/api/runs", headers={"Host": "evil.example:8181"})
    assert response.status_code == 421
    assert client.get("/api/runs", headers={"Host": "localhost"}).status_code == 200


def test_no_password_appears_even_in_errors(history: History, serve) -> None:
    """Every service unreachable with a password in its URL: pages fail, secrets stay hidden."""
    secrets = ["pg-secret-pw", "amqp-secret-pw", "redis-secret-pw", "mgmt-secret-pw"]
    broken = replace(
        history.settings,
        database_url="postgresql://postgres:pg-secret-pw@127.0.0.1:5432/no_such_database_x",
        broker_url="amqp://guest:amqp-secret-pw@127.0.0.1:5672/%2F",
        redis_url="redis://:redis-secret-pw@127.0.0.1:1/0",
        rabbitmq_api="http://guest:mgmt-secret-pw@127.0.0.1:15672")
    client = Client(serve(broken).url)
    token = client.csrf()
    responses = [client.get(path, headers={"Accept": accept})
                 for path in ("/runs", "/api/runs", "/runs/x", "/datasets", "/api/datasets",
                              "/failures", "/api/failures", "/queues", "/api/queues", "/metrics",
                              "/datasets/timezone/combined-shapefile-with-oceans/preview.svg")
                 for accept in ("text/html", "application/json")]
    responses += [client.post("/api/runs", json={"datasets": ["timezone"]},
                              headers={"X-CSRF-Token": token}),
                  client.post("/api/dead-letters/all/requeue", headers={"X-CSRF-Token": token})]
    assert any(r.status_code == 503 for r in responses)
    for response in responses:
        for secret in secrets:
            assert secret not in response.text, (response.url, response.text[:500])
    queues = client.get("/api/queues").json()
    assert "HTTP 401" in queues["error"] and "***" in queues["error"]


def test_an_unexpected_error_is_a_500_without_secrets(
        history: History, serve, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A bug, played by a query that raises with a password in its message: a 500 that names
    the error, scrubbed, with the security headers; the logged traceback is scrubbed too."""
    from service.ledger import history as queries

    def broken(conn: psycopg.Connection) -> None:
        raise RuntimeError("lost postgresql://geoload:pg-secret-pw@db.example/geoload")

    monkeypatch.setattr(queries, "published", broken)
    client = Client(serve(history.settings).url)
    with caplog.at_level(logging.ERROR, logger="service.dashboard"):
        response = client.get("/api/datasets")
        page = client.get("/datasets", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response.json()["error"].startswith("internal error (RuntimeError: lost ")
    assert page.status_code == 500 and "<h1>500</h1>" in page.text
    for answer in (response, page):
        assert "pg-secret-pw" not in answer.text and "geoload:***@db.example" in answer.text
        assert answer.headers["X-Frame-Options"] == "DENY"
    assert "Traceback" in caplog.text and "RuntimeError: lost" in caplog.text
    assert "pg-secret-pw" not in caplog.text


def test_no_password_in_normal_pages(client: Client, history: History) -> None:
    """The default URLs carry guest:guest; no page shows it."""
    for path in ("/runs", f"/runs/{history.succeeded}", "/datasets", "/failures", "/queues",
                 "/api/runs", "/api/datasets", "/api/failures", "/api/queues", "/metrics"):
        assert "guest:guest" not in client.get(path).text, path


# --- history survives restarts --------------------------------------------------------------

def test_history_survives_restarts_of_dashboard_redis_and_workers(
        history: History, serve: Callable[..., Server]) -> None:
    first = Client(serve(history.settings).url).get(f"/api/runs/{history.succeeded}").json()
    # a new dashboard (a new process secret, no memory of the first)
    again = Client(serve(history.settings).url).get(f"/api/runs/{history.succeeded}").json()
    assert again["datasets"] == first["datasets"] and again["status"] == "succeeded"
    # Redis gone: live state is lost, history is not
    no_redis = Client(serve(replace(history.settings, redis_url="redis://127.0.0.1:1/0")).url)
    without = no_redis.get(f"/api/runs/{history.succeeded}").json()
    assert without["datasets"][0]["loaded"] == history.features
    assert without["status"] == "succeeded"
    assert no_redis.get("/api/queues").json()["workers"] == []
    assert [r["run_id"] for r in no_redis.get("/api/runs").json()["runs"]][-2:] == [
        history.failed, history.succeeded]
    # workers stopped and started again
    history.workers.stop()
    try:
        after = Client(serve(history.settings).url).get("/api/runs").json()["runs"]
        assert {history.succeeded, history.failed} <= {r["run_id"] for r in after}
    finally:
        history.workers = Workers(history.settings)
        history.workers.wait_ready()
    started = start_run(history.settings, "timezone")
    assert wait_run(history.settings, started, workers=history.workers).status == "succeeded"


def test_cancel_button_ends_an_unfinished_run_behind_csrf(client: Client,
                                                          history: History) -> None:
    """A run whose messages were never sent stays queued: what Cancel is for."""
    with psycopg.connect(history.settings.database_url, autocommit=True) as conn:
        run_id = runs.create(conn, ["timezone"], {"timezone": "2026c"}, origin="test")
    page = client.get(f"/runs/{run_id}").text
    assert f'action="/api/runs/{run_id}/cancel"' in page and 'data-test="cancel-run"' in page
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 403  # no CSRF token

    form = client.post(f"/api/runs/{run_id}/cancel", data={"csrf": client.csrf()},
                       headers={"Origin": client.base})
    assert form.status_code == 303 and form.headers["Location"] == f"/runs/{run_id}"
    data = client.get(f"/api/runs/{run_id}").json()
    assert data["status"] == "cancelled" and data["datasets"][0]["status"] == "cancelled"
    page = client.get(f"/runs/{run_id}").text
    assert 'data-test="cancel-run"' not in page
    assert f'action="/api/runs/{run_id}/retry"' in page  # a cancelled dataset can be retried

    again = client.post(f"/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": client.csrf()})
    assert again.status_code == 202 and again.json()["noop"] is True
    finished = client.post(f"/api/runs/{history.succeeded}/cancel",
                           headers={"X-CSRF-Token": client.csrf()})
    assert finished.json() | {"url": None} == {
        "run_id": history.succeeded, "cancelled": [], "ended": {"timezone": "published"},
        "noop": True, "dropped": [], "url": None}
    assert client.post("/api/runs/nope/cancel", headers={"X-CSRF-Token": client.csrf()}
                       ).status_code == 404


def test_datasets_page_shows_the_next_scheduled_check_and_what_it_covers(
        client: Client, history: History) -> None:
    data = client.get("/api/datasets").json()
    refresh = data["refresh"]
    assert refresh["setting"] == "published" and refresh["error"] is None
    loaded = [d["dataset"] for d in data["datasets"] if d["loaded"]]  # gadm too, if run later
    assert "timezone" in loaded
    assert refresh["covers"] == [{"dataset": name, "why": "published at least once"}
                                 for name in loaded]
    assert refresh["cron"] == history.settings.refresh_cron and refresh["next"]
    page = client.get("/datasets").text
    assert re.search(r"Next scheduled check <time datetime=\"[^\"]+\">.*</time> \(cron "
                     r"<code>17 3 \* \* \*</code>\) covers\s+.*timezone \(published at least "
                     r"once\)", page, re.S), page[:3000]


# --- point lookup (issue 15) ----------------------------------------------------------------

def test_lookup_answers_a_point_from_the_published_time_zones(client: Client,
                                                              history: History) -> None:
    """The zone is the one PostGIS finds the point in on the data table (not the lookup's)."""
    with psycopg.connect(history.settings.database_url) as db:
        tzid, lon, lat = db.execute(
            "SELECT tzid, ST_X(p), ST_Y(p) FROM (SELECT tzid, ST_PointOnSurface(geom) p "
            "FROM timezone.timezones ORDER BY ST_Area(geom) DESC LIMIT 1) s").fetchone()
    response = client.get(f"/api/lookup?lat={lat}&lon={lon}")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["lat"], answer["lon"]) == (pytest.approx(lat), pytest.approx(lon))
    assert [hit["tzid"] for hit in answer["results"]["timezone"]] == [tzid]
    assert answer["results"]["timezone"][0]["on_border"] is False


@pytest.mark.parametrize(("query", "says"), [
    ("lat=91&lon=0", "latitude 91.0 is outside [-90, 90]"),
    ("lat=0&lon=-180.5", "longitude -180.5 is outside [-180, 180]"),
    ("lat=north&lon=8", "lat and lon must be numbers"),
    ("lat=nan&lon=8", "latitude nan is outside"),
    ("lon=8", "give the point as ?lat=…&lon=…"),
])
def test_lookup_refuses_a_bad_point_with_400(client: Client, history: History, query: str,
                                            says: str) -> None:
    response = client.get(f"/api/lookup?{query}")
    assert response.status_code == 400
    assert says in response.json()["error"]


def test_lookup_takes_the_same_token_as_the_rest_of_the_api(history: History, serve) -> None:
    server = serve(replace(history.settings, dashboard_token=TOKEN))
    url = server.url + "/api/lookup?lat=0&lon=0"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).ok
