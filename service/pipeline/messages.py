"""The messages geoload sends, named once, carrying only small identifiers.

Steps decide *what* runs next and return :class:`Next` values; the pipeline sends
them as Dramatiq messages by actor name (:mod:`service.pipeline.broker`), so that
sending needs neither the actor modules nor their heavy imports.

Stages, per dataset::

    fetch_source → plan_load ─┬→ load_chunk ×N ─→ finish_layer (per layer) ─→ publish_dataset
                              └→ ...

A load made of several files (GADM by country) fans out: its ``fetch_source`` sends one
``fetch_source(run, dataset, part)`` per file, and the one that pins the last file sends
``plan_load``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import dramatiq

FETCH = "fetch_source"
PLAN = "plan_load"
CHUNK = "load_chunk"
FINISH = "finish_layer"
PUBLISH = "publish_dataset"
FAILURE = "record_failure"
REFRESH = "refresh_datasets"
SWEEP = "sweep_stalled_loads"

#: RabbitMQ priorities (the queue is declared with ``x-max-priority``): a layer's index
#: build and a dataset's publish overtake the chunks still queued, so they overlap
#: the loading of other layers instead of all waiting for the very last chunk.
PRIORITY = {FAILURE: 8, FINISH: 5, PUBLISH: 5, FETCH: 3, PLAN: 3}
MAX_PRIORITY = 10

#: What each actor's positional arguments are, for validation and failure reports.
ARGUMENTS: dict[str, tuple[str, ...]] = {
    FETCH: ("run_id", "dataset", "part"),
    PLAN: ("run_id", "dataset"),
    CHUNK: ("run_id", "dataset", "layer", "chunk_no"),
    FINISH: ("run_id", "dataset", "layer"),
    PUBLISH: ("run_id", "dataset"),
}
#: ``record_failure``'s arguments: the dead message's actor and arguments, its error, and
#: (optional, the last two) the worker that ran its last attempt and how many it took.
FAILURE_ARGUMENTS = ("actor", "args", "error_type", "error", "worker", "attempts")


class Next(NamedTuple):
    """A message to send: an actor name and its (small) arguments."""

    actor: str
    args: tuple[Any, ...]


def describe(actor: str, args: object) -> dict[str, object]:
    """Map a message's positional args to names; tolerant of malformed messages."""
    names = ARGUMENTS.get(actor, ())
    values = list(args) if isinstance(args, (list, tuple)) else []
    return {name: value for name, value in zip(names, values)}


def to_dramatiq(step: Next, queue: str, **options: object) -> "dramatiq.Message":
    import dramatiq

    return dramatiq.Message(queue_name=queue, actor_name=step.actor, args=tuple(step.args),
                            kwargs={}, options={"broker_priority": PRIORITY.get(step.actor, 0),
                                                **options})
