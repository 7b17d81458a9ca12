"""Message names, arguments and priorities, and the one dispatch table that handles them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.errors import BadMessage
from service.live import Live
from service.pipeline import messages, steps
from service.pipeline.messages import (
    ARGUMENTS,
    CHUNK,
    FAILURE,
    FETCH,
    FINISH,
    MAX_PRIORITY,
    PLAN,
    PUBLISH,
    Next,
    describe,
    to_dramatiq,
)
from tests.conftest import ROOT


def test_a_message_carries_its_priority_and_only_small_identifiers():
    message = to_dramatiq(Next(FINISH, ("run", "gadm", "ADM_1")), "q", pipe_ignore=True)
    assert (message.queue_name, message.actor_name, message.args) == (
        "q", FINISH, ("run", "gadm", "ADM_1"))
    assert message.options == {"broker_priority": 5, "pipe_ignore": True}
    # A layer's index build and a failure overtake the chunks still queued.
    priority = {name: to_dramatiq(Next(name, ()), "q").options["broker_priority"]
                for name in (CHUNK, FINISH, PUBLISH, FAILURE)}
    assert priority[CHUNK] < priority[FINISH] == priority[PUBLISH] < priority[FAILURE]
    assert max(messages.PRIORITY.values()) <= MAX_PRIORITY


def test_describe_names_the_arguments_and_tolerates_anything():
    assert describe(CHUNK, ["r", "gadm", "ADM_2", 4]) == {
        "run_id": "r", "dataset": "gadm", "layer": "ADM_2", "chunk_no": 4}
    assert describe(FETCH, ("r",)) == {"run_id": "r"}
    assert describe(FETCH, None) == {} and describe("unknown_actor", [1, 2]) == {}


def test_the_dispatch_table_handles_every_stage_message():
    assert set(steps.STEPS) == {*ARGUMENTS, FAILURE}
    for actor, step in steps.STEPS.items():
        assert step.arguments == (ARGUMENTS.get(actor) or messages.FAILURE_ARGUMENTS)


@pytest.mark.parametrize(("actor", "args", "kwargs"), [
    (PLAN, ("run",), {}),
    (PLAN, ("run", "gadm", "extra"), {}),
    (CHUNK, ("run", "gadm", "ADM_1", 0), {"retry": True}),
    (FAILURE, ("load_chunk", []), {}),
])
def test_a_message_that_fits_no_call_is_refused_before_anything_runs(settings, actor, args,
                                                                     kwargs):
    with pytest.raises(BadMessage, match=f"{actor} takes"):
        steps.call(settings, Live(settings), actor, args, kwargs)


def test_every_actor_the_workers_run_is_in_the_table_with_the_same_name():
    """The workers' actors are declared in ``actors/``; each must hand its message to the
    table (checked in a process of its own: importing ``actors`` sets the global broker)."""
    check = ("import actors; from service.pipeline import steps; "
             "names = set(actors.broker.get_declared_actors()); "
             "print(sorted(set(steps.STEPS) - names), sorted(names - set(steps.STEPS)))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split("\n")[-2]
    assert out == "[] ['refresh_datasets', 'sweep_stalled_loads']"
