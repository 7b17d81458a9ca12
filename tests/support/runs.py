"""Start a run the way a user does and wait for its end."""

from __future__ import annotations

import json
from typing import Any

from service.settings import Settings
from tests.conftest import run_cli


def enqueue_and_wait(settings: Settings, *datasets: str) -> dict[str, Any]:
    """``python -m service.enqueue DATASETS --wait --json``: its last JSON line, the run's end."""
    done = run_cli("service.enqueue", *datasets, "--wait", "--json", settings=settings,
                   timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines[0]["datasets"] == list(datasets)
    return lines[-1]
