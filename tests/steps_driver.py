"""Drive a run's steps in this process, without a broker: for tests of the steps themselves."""

from __future__ import annotations

from collections import deque
from typing import Any

from service import catalog, ledger
from service.live import Live
from service.messages import CHUNK, FETCH, FINISH, PLAN, PUBLISH, Next
from service.postgres import connect
from service.settings import Settings
from service.steps import Outcome, chunk, fetch, finish, plan, publish


def step_table(settings: Settings) -> dict[str, Any]:
    live = Live(settings)
    return {
        FETCH: lambda *a: fetch.fetch_source(settings, live, *a),
        PLAN: lambda *a: plan.plan_load(settings, *a),
        CHUNK: lambda *a: chunk.load_chunk(settings, live, *a),
        FINISH: lambda *a: finish.finish_layer(settings, *a),
        PUBLISH: lambda *a: publish.publish_dataset(settings, *a),
    }


def new_run(settings: Settings, *datasets: str) -> str:
    with connect(settings, autocommit=True) as conn:
        return ledger.create_run(conn, list(datasets),
                                 {d: catalog.get(d).release(settings) for d in datasets})


def run_step(settings: Settings, step: Next) -> Outcome:
    return step_table(settings)[step.actor](*step.args)


def drain(settings: Settings, steps: list[Next], *, stop_before: str | None = None
          ) -> list[Next]:
    """Run steps breadth-first until none are left (or until ``stop_before``); returns held."""
    queue, held = deque(steps), []
    while queue:
        step = queue.popleft()
        if step.actor == stop_before:
            held.append(step)
            continue
        queue.extend(run_step(settings, step).next)
    return held
