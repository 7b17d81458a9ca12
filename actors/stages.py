"""The stage actors: fetch → plan → load chunks → finish layers → publish, and record_failure.

Each hands its message to the pipeline's dispatch table (:mod:`service.pipeline.steps`),
which runs the step and sends what comes next; an actor only sets Dramatiq's options.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from actors import SETTINGS, broker, live
from service.errors import PermanentError
from service.pipeline import messages, steps

#: Retry transient failures with backoff from 1 s up to 5 min: short enough that a
#: retried message never waits near RabbitMQ's 30-minute consumer timeout.
RETRY: dict[str, Any] = dict(
    max_retries=SETTINGS.max_retries, min_backoff=1_000, max_backoff=300_000,
    throws=(PermanentError,), queue_name=SETTINGS.queue, store_results=True)
MINUTE_MS = 60_000


def _handle(actor: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return steps.handle(broker, SETTINGS, live, actor, args, kwargs)


@dramatiq.actor(actor_name=messages.FETCH, time_limit=20 * MINUTE_MS, **RETRY)
def fetch_source(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Download into this host's cache; a cut download resumes on retry."""
    return _handle(messages.FETCH, args, kwargs)


@dramatiq.actor(actor_name=messages.PLAN, time_limit=10 * MINUTE_MS, **RETRY)
def plan_load(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return _handle(messages.PLAN, args, kwargs)


@dramatiq.actor(actor_name=messages.CHUNK, time_limit=10 * MINUTE_MS, **RETRY)
def load_chunk(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return _handle(messages.CHUNK, args, kwargs)


@dramatiq.actor(actor_name=messages.FINISH, time_limit=20 * MINUTE_MS, **RETRY)
def finish_layer(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return _handle(messages.FINISH, args, kwargs)


@dramatiq.actor(actor_name=messages.PUBLISH, time_limit=10 * MINUTE_MS, **RETRY)
def publish_dataset(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return _handle(messages.PUBLISH, args, kwargs)


@dramatiq.actor(actor_name=messages.FAILURE, time_limit=5 * MINUTE_MS, **RETRY)
def record_failure(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """(actor, args, error_type, error, worker, attempts) of the dead message; sent by the
    FailureRecorder middleware."""
    return _handle(messages.FAILURE, args, kwargs)
