"""Drive a run's steps in this process, without a broker: for tests of the steps themselves.

Steps run through the pipeline's own dispatch table (:mod:`service.pipeline.steps`), as
a worker runs them; what they would send is queued here instead.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from service import catalog
from service.catalog.options import resolve
from service.ledger import runs
from service.live import Live
from service.pipeline import steps
from service.pipeline.context import Outcome
from service.pipeline.messages import Next
from service.postgres import connect
from service.settings import Settings


def new_run(settings: Settings, *datasets: str, **choices: Any) -> str:
    """A run as the CLI records it; ``choices`` (levels, schema, ...) as ``enqueue`` takes
    them, resolved into each load's options."""
    options = ({d: resolve(catalog.get(d), settings, **choices) for d in datasets}
               if choices else None)
    with connect(settings, autocommit=True) as conn:
        return runs.create(conn, list(datasets),
                           {d: catalog.get(d).release(settings) for d in datasets},
                           options=options)


def run_step(settings: Settings, step: Next) -> Outcome:
    return steps.call(settings, Live(settings), step.actor, step.args)


def drain(settings: Settings, steps_: list[Next], *, stop_before: str | None = None
          ) -> list[Next]:
    """Run steps breadth-first until none are left (or until ``stop_before``); returns held."""
    queue, held = deque(steps_), []
    while queue:
        step = queue.popleft()
        if step.actor == stop_before:
            held.append(step)
            continue
        queue.extend(run_step(settings, step).next)
    return held
