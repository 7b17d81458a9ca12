"""What every step shares: the message's ids checked, its load, and what it returns.

A step takes the settings, the live state and the message's identifiers, does its work
idempotently (at-least-once delivery means any step may run twice), and returns an
:class:`Outcome`: a small result for Dramatiq's Results backend and the
:class:`~service.pipeline.messages.Next` messages to send once it committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from service import catalog
from service.catalog import Dataset
from service.catalog.options import LoadOptions
from service.errors import BadMessage
from service.ledger import loads
from service.ledger.records import Load
from service.pipeline.messages import Next
from service.postgres import reused
from service.settings import Settings


@dataclass
class Outcome:
    result: dict[str, Any]
    next: list[Next] = field(default_factory=list)


def skipped(reason: str, **ids: Any) -> Outcome:
    return Outcome({"status": "skipped", "reason": reason, **ids})


def check_ids(run_id: object, dataset: object, *more: tuple[str, object, type]) -> Dataset:
    """Validate a message's arguments before touching anything; returns the dataset."""
    if not isinstance(run_id, str) or not isinstance(dataset, str):
        raise BadMessage(f"run id and dataset must be strings, got {run_id!r}, {dataset!r}",
                         hint="this message was not sent by geoload; discard it")
    for name, value, kind in more:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BadMessage(f"{name} must be {kind.__name__}, got {value!r}",
                             dataset=dataset, hint="this message was not sent by geoload; "
                                                   "discard it")
    return catalog.get(dataset)


def dataset_of(load: Load) -> Dataset:
    """The dataset as ``load`` loads it: the catalog's entry with the options fixed at
    enqueue applied (release, URL, levels, schema), never this worker's own settings."""
    ds = catalog.get(load.dataset)
    return load.options.apply(ds) if load.options is not None else ds


def every_level(load: Load) -> Dataset:
    """The dataset as ``load`` loads it, but with every layer (``--levels`` not applied)."""
    return (load.options or LoadOptions()).every_level(catalog.get(load.dataset))


@contextmanager
def load_context(settings: Settings, run_id: str,
                 dataset: str) -> Iterator[tuple[psycopg.Connection, Load]]:
    """An autocommit connection and the load this message is about, or :class:`BadMessage`.

    Autocommit, so that each ``conn.transaction()`` block is a real transaction
    and reads outside one hold no locks.
    """
    with reused(settings) as conn:
        load = loads.get(conn, run_id, dataset)
        if load is None:
            raise BadMessage(f"no load of {dataset!r} in run {run_id!r}", dataset=dataset,
                             hint="the run was deleted or never existed; discard the message")
        yield conn, load
