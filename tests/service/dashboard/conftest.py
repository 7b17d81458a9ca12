"""Fixtures for the dashboard tests: a real load history, and dashboards serving it.

``history`` runs real loads once per module through RabbitMQ and the workers: one
run that succeeds (timezone) and one that fails (gadm behind a 404), so every
page has real rows, tables and dead letters to show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.dashboard.app import create_app
from service.dashboard.server import Server, serving
from service.settings import Settings
from tests.conftest import Workers, purge_queue, reset_database
from tests.service.dashboard.support import (
    GADM_PATH,
    Client,
    History,
    Process,
    start_run,
    wait_run,
)


@pytest.fixture(scope="module")
def history(settings: Settings, upstream: Any, upstream_files: Any) -> Iterator[History]:
    """A clean database holding one succeeded and one failed run, with workers running."""
    reset_database(settings.database_url)
    purge_queue(settings)
    found = History(settings, Workers(settings))
    try:
        found.workers.wait_ready()
        found.succeeded = start_run(settings, "timezone")
        assert wait_run(settings, found.succeeded).status == "succeeded"
        upstream.fault(GADM_PATH, "status", status=404)
        try:
            found.failed = start_run(settings, "gadm")
            assert wait_run(settings, found.failed).status == "failed"
        finally:
            upstream.clear_faults()
        found.features = upstream_files[1].timezone.features
        yield found
    finally:
        found.workers.stop()


@pytest.fixture()
def serve() -> Iterator[Callable[..., Server]]:
    """Start in-process dashboards with any settings; all are stopped after the test."""
    stack: list[Any] = []

    def start(settings: Settings, host: str = "127.0.0.1") -> Server:
        manager = serving(create_app(settings), host, 0)
        server = manager.__enter__()
        stack.append(manager)
        return server

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture()
def dashboard(history: History, serve: Callable[..., Server]) -> Server:
    return serve(history.settings)


@pytest.fixture()
def client(dashboard: Server) -> Client:
    return Client(dashboard.url)


@pytest.fixture()
def dashboard_process(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start dashboard processes; each is stopped after the test."""
    started: list[Process] = []

    def start(settings: Settings, **env: str) -> Process:
        process = Process(settings, tmp_path / f"dashboard-{len(started)}.log", **env)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()
