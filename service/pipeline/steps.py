"""The one dispatch table: actor name → the step that handles its message.

The Dramatiq actors (``actors/``), the tests' in-process driver and any other runner
call steps through it, so a message means the same wherever it is handled:

>>> outcome = steps.call(settings, live, "plan_load", ("20261129T172233-3f9a1c", "gadm"))
>>> steps.handle(broker, settings, live, "plan_load", args, {})   # and send outcome.next
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.errors import BadMessage
from service.live import Live
from service.pipeline import chunk, failure, fetch, finish, plan, publish
from service.pipeline.broker import send
from service.pipeline.context import Outcome
from service.pipeline.messages import (
    ARGUMENTS,
    CHUNK,
    FAILURE,
    FAILURE_ARGUMENTS,
    FETCH,
    FINISH,
    PLAN,
    PUBLISH,
)
from service.settings import Settings


@dataclass(frozen=True)
class Step:
    """A step function (called with the settings, the live state, then the message's
    arguments), the arguments it takes, and how many of the last ones are optional."""

    run: Callable[..., Outcome]
    arguments: tuple[str, ...]
    optional: int = 0

    def check(self, actor: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A message that fits no call is refused once (BadMessage), never retried as
        TypeError."""
        expected = self.arguments
        if kwargs or not len(expected) - self.optional <= len(args) <= len(expected):
            raise BadMessage(f"{actor} takes ({', '.join(expected)}), got {len(args)} "
                             "argument(s)" + (f" and keywords {sorted(kwargs)}" if kwargs else ""),
                             hint="this message was not sent by geoload; discard it")


STEPS: dict[str, Step] = {
    FETCH: Step(fetch.fetch_source, ARGUMENTS[FETCH], optional=1),
    PLAN: Step(plan.plan_load, ARGUMENTS[PLAN]),
    CHUNK: Step(chunk.load_chunk, ARGUMENTS[CHUNK]),
    FINISH: Step(finish.finish_layer, ARGUMENTS[FINISH]),
    PUBLISH: Step(publish.publish_dataset, ARGUMENTS[PUBLISH]),
    FAILURE: Step(failure.record_failure, FAILURE_ARGUMENTS, optional=2),
}


def call(settings: Settings, live: Live, actor: str, args: tuple[Any, ...] | list[Any],
         kwargs: dict[str, Any] | None = None) -> Outcome:
    """Check the message's arity and run its step; nothing is sent."""
    step = STEPS[actor]
    step.check(actor, tuple(args), kwargs or {})
    return step.run(settings, live, *args)


def handle(broker: Any, settings: Settings, live: Live, actor: str, args: tuple[Any, ...],
           kwargs: dict[str, Any]) -> dict[str, Any]:
    """What an actor does with its message: run the step, send what it says comes next
    (once its work committed), and return its result for the Results backend."""
    outcome = call(settings, live, actor, args, kwargs)
    send(broker, settings, outcome.next)
    return outcome.result
