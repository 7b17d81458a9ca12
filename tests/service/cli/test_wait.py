"""``python -m service.wait``: what the Docker entrypoint and the health checks stand on."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from tests.conftest import run_cli


def test_waits_for_the_three_services_by_default(settings):
    done = run_cli("service.wait", "--timeout", "20", settings=settings, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stderr.splitlines()] == [
        "postgis", "redis", "rabbitmq"]


def test_gives_up_naming_the_service_that_never_answered(settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    done = run_cli("service.wait", "postgis", "rabbitmq", "--timeout", "2", settings=settings,
                   timeout=60, BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}/%2F")
    assert done.returncode == 3, done.stderr
    assert "postgis is up" in done.stderr
    assert "RabbitMQ can't be reached" in done.stderr and "gave up after 2 s" in done.stderr
    assert time.monotonic() - started < 30


class Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_waits_until_a_late_dashboard_answers(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    servers: list[HTTPServer] = []

    def serve_later() -> None:
        time.sleep(1.5)
        servers.append(HTTPServer(("127.0.0.1", port), Healthz))
        servers[0].serve_forever(poll_interval=0.05)

    threading.Thread(target=serve_later, daemon=True).start()
    try:
        done = run_cli("service.wait", "dashboard", "--timeout", "20", settings=settings,
                       timeout=60, GEOLOAD_DASHBOARD_HOST="127.0.0.1",
                       GEOLOAD_DASHBOARD_PORT=str(port))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert done.returncode == 0, done.stderr
    assert "waiting: The dashboard can't be reached" in done.stderr
    assert done.stderr.rstrip().endswith("dashboard is up")


def test_worker_target_needs_a_heartbeat_from_this_host(settings):
    done = run_cli("service.wait", "worker", "--timeout", "1", settings=settings, timeout=60,
                   GEOLOAD_QUEUE="geoload-nobody-consumes-this")
    assert done.returncode == 3
    assert "no heartbeat on queue 'geoload-nobody-consumes-this'" in done.stderr


def test_worker_target_sees_running_workers(workers, settings):
    done = run_cli("service.wait", "worker", "--timeout", "10", "--quiet", settings=settings,
                   timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_an_unknown_target_is_a_usage_error(settings):
    done = run_cli("service.wait", "postgres", settings=settings, timeout=60)
    assert done.returncode == 2
    assert "unknown target 'postgres'" in done.stderr
