"""Fixtures of the fault suite: one stack (mirror, workers, clean database) per test module.

A module tunes its workers with a module-level ``WORKER_ENV`` dict (retries,
limits, timeouts); each test leaves the mirror as it found it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.settings import Settings
from tests.faults.harness import Stack, running_stack

#: Workers retry a transient failure twice (backoff 1-2 s, then 2-4 s) unless a module says.
DEFAULT_ENV = {"GEOLOAD_MAX_RETRIES": "2", "GEOLOAD_CHUNK_FEATURES": "60"}


@pytest.fixture(scope="module")
def stack(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    env = {**DEFAULT_ENV, **getattr(request.module, "WORKER_ENV", {})}
    with running_stack(base_settings, tmp_path_factory.mktemp("faults"), **env) as running:
        yield running


@pytest.fixture(scope="module")
def previous(stack: Stack) -> dict[str, tuple[int, str]]:
    """A good version of both datasets, loaded first: what every bad input must not lose."""
    run = stack.enqueue("gadm", "timezone")
    assert run.code == 0, run.output[-3000:]
    return stack.snapshot()


@pytest.fixture(autouse=True)
def _clean_mirror(request: pytest.FixtureRequest) -> Iterator[None]:
    """An empty request log for each test; good files and no faults after it."""
    if "stack" not in request.fixturenames:
        yield
        return
    mirror = request.getfixturevalue("stack").mirror
    mirror.forget()
    yield
    mirror.restore()
