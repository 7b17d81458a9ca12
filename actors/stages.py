"""The stage actors: fetch → plan → load chunks → finish layers → publish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from actors import SETTINGS, broker
from service import messages
from service.broker import send
from service.errors import BadMessage, PermanentError
from service.live import Live
from service.steps import Outcome, chunk, fetch, finish, plan, publish

#: Retry transient failures with backoff from 1 s up to 5 min: short enough that a
#: retried message never waits near RabbitMQ's 30-minute consumer timeout.
RETRY: dict[str, Any] = dict(
    max_retries=SETTINGS.max_retries, min_backoff=1_000, max_backoff=300_000,
    throws=(PermanentError,), queue_name=SETTINGS.queue, store_results=True)
MINUTE_MS = 60_000
_live = Live(SETTINGS)


def run_step(actor: str, step: Callable[..., Outcome], args: tuple[Any, ...],
             kwargs: dict[str, Any], *, with_live: bool = False) -> dict[str, Any]:
    """Check the message's arity, run the step, send what it says comes next."""
    check_arguments(actor, messages.ARGUMENTS[actor], args, kwargs)
    outcome = step(SETTINGS, _live, *args) if with_live else step(SETTINGS, *args)
    send(broker, SETTINGS, outcome.next)
    return outcome.result


def check_arguments(actor: str, expected: tuple[str, ...], args: tuple[Any, ...],
                    kwargs: dict[str, Any], optional: int = 0) -> None:
    """A message that fits no call is refused once (BadMessage), never retried as TypeError."""
    if kwargs or not len(expected) - optional <= len(args) <= len(expected):
        raise BadMessage(f"{actor} takes ({', '.join(expected)}), got {len(args)} argument(s)"
                         + (f" and keywords {sorted(kwargs)}" if kwargs else ""),
                         hint="this message was not sent by geoload; discard it")


@dramatiq.actor(actor_name=messages.FETCH, time_limit=20 * MINUTE_MS, **RETRY)
def fetch_source(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Download into this host's cache; a cut download resumes on retry."""
    return run_step(messages.FETCH, fetch.fetch_source, args, kwargs, with_live=True)


@dramatiq.actor(actor_name=messages.PLAN, time_limit=10 * MINUTE_MS, **RETRY)
def plan_load(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return run_step(messages.PLAN, plan.plan_load, args, kwargs)


@dramatiq.actor(actor_name=messages.CHUNK, time_limit=10 * MINUTE_MS, **RETRY)
def load_chunk(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return run_step(messages.CHUNK, chunk.load_chunk, args, kwargs, with_live=True)


@dramatiq.actor(actor_name=messages.FINISH, time_limit=20 * MINUTE_MS, **RETRY)
def finish_layer(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return run_step(messages.FINISH, finish.finish_layer, args, kwargs)


@dramatiq.actor(actor_name=messages.PUBLISH, time_limit=10 * MINUTE_MS, **RETRY)
def publish_dataset(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return run_step(messages.PUBLISH, publish.publish_dataset, args, kwargs)
