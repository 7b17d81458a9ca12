"""Helpers for the dashboard tests: start and await runs, an HTTP client, a dashboard process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import requests

from service import catalog
from service.ledger import schema
from service.ledger.status import RunStatus, run_status
from service.live import Live
from service.pipeline.broker import make_broker
from service.pipeline.start import start
from service.settings import Settings
from tests.conftest import ROOT, Workers, worker_env

GADM_PATH = "/gadm/gadm4.1/gadm_410-levels.zip"
TIMEZONE_PATH = ("/evansiroky/timezone-boundary-builder/releases/download/2026c/"
                 "timezones-with-oceans.shapefile.zip")


def start_run(settings: Settings, *names: str, retry_of: str | None = None) -> str:
    """Start a run the way the CLI does; returns its id."""
    broker = make_broker(settings)
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            schema.ensure(conn)
            return start(settings, conn, broker, catalog.resolve(list(names)),
                         origin="test", retry_of=retry_of).run_id
    finally:
        broker.close()


def wait_run(settings: Settings, run_id: str, timeout: float = 180,
             workers: Workers | None = None) -> RunStatus:
    """Poll until the run ended; its final status. A timeout shows where it stood."""
    deadline = time.monotonic() + timeout
    found = None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            found = run_status(conn, Live(settings), run_id)
            if found is not None and found.finished:
                return found
            time.sleep(0.3)
    state = found.as_json() if found else None
    log = workers.tail(4000) if workers else ""
    raise TimeoutError(f"run {run_id} did not end within {timeout}s: {state}\n{log}")


@dataclass
class History:
    """A module's load history: which runs succeeded and failed, and the workers running."""

    settings: Settings
    workers: Workers
    succeeded: str = ""
    failed: str = ""
    features: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client(requests.Session):
    """A browser-like session against one dashboard: base URL, CSRF cookie and token."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def request(self, method: str | bytes, url: str | bytes, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs["allow_redirects"] = False  # Session.get would pass True
        return super().request(method, self.base + str(url), *args, **kwargs)

    def csrf(self) -> str:
        """Fetch a token (and the cookie it is bound to), as a page load does."""
        response = self.get("/api/csrf")
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


class Process:
    """``python -m service.dashboard`` as a real process, as a user starts it."""

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = worker_env(settings, GEOLOAD_DASHBOARD_PORT=str(self.port), **env)
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "service.dashboard"], cwd=ROOT,
                                     env=full, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dashboard exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"dashboard not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return int(self.proc.returncode)


def with_queue(settings: Settings, suffix: str) -> Settings:
    """The same services, another queue: a place no worker consumes."""
    return replace(settings, queue=f"{settings.queue}-{suffix}")
