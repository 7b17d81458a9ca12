"""What each message does: one module per stage, one function per actor.

A step takes the settings and the message's identifiers, does its work
idempotently (at-least-once delivery means any step may run twice), and
returns a :class:`Outcome`: a small result for Dramatiq's Results backend
and the :class:`~service.messages.Next` messages to send after it committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from service import catalog, ledger
from service.catalog import Dataset
from service.errors import BadMessage, BadSource
from service.messages import CHUNK, FINISH, PUBLISH, Next
from service.postgres import reused
from service.settings import Settings


@dataclass
class Outcome:
    result: dict[str, Any]
    next: list[Next] = field(default_factory=list)


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


@contextmanager
def load_context(settings: Settings, run_id: str,
                 dataset: str) -> Iterator[tuple[psycopg.Connection, ledger.Load]]:
    """An autocommit connection and the load this message is about, or :class:`BadMessage`.

    Autocommit, so that each ``conn.transaction()`` block is a real transaction
    and reads outside one hold no locks.
    """
    with reused(settings) as conn:
        load = ledger.get_load(conn, run_id, dataset)
        if load is None:
            raise BadMessage(f"no load of {dataset!r} in run {run_id!r}", dataset=dataset,
                             hint="the run was deleted or never existed; discard the message")
        yield conn, load


def moves_on(conn: psycopg.Connection, load_id: int, run_id: str, dataset: str,
             capacity: int | None = None) -> list[Next]:
    """What moves a planned load on from where its ledger stands, sent by a plan (first or
    redelivered) and by the sweep alike: the chunks not loaded yet (in the send order for a
    worker's budget ``capacity``), ``finish_layer`` for every layer whose chunks are all
    loaded but that is not indexed (a layer without chunks at once), and
    ``publish_dataset`` once every layer is indexed."""
    steps = [Next(CHUNK, (run_id, dataset, layer, n))
             for layer, n in ledger.pending_chunks(conn, load_id, capacity)]
    layers = ledger.layer_rows(conn, load_id)
    steps += [Next(FINISH, (run_id, dataset, row["layer"])) for row in layers
              if row["status"] != "ready" and row["chunks_done"] == row["chunks_total"]]
    if layers and all(row["status"] == "ready" for row in layers):
        steps.append(Next(PUBLISH, (run_id, dataset)))
    return steps


def skipped(reason: str, **ids: Any) -> Outcome:
    return Outcome({"status": "skipped", "reason": reason, **ids})


@contextmanager
def refused_data(dataset: str, what: str) -> Iterator[None]:
    """PostgreSQL refusing a value (duplicate key, bad encoding) is the source's fault: no retry."""
    try:
        yield
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError,
            psycopg.errors.ProgramLimitExceeded) as exc:
        detail = exc.diag.message_primary or str(exc)
        extra = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""
        raise BadSource(f"{what}: PostgreSQL refused the data: {detail}{extra}", dataset=dataset,
                        hint="the source breaks an assumption of the catalog (unique key, "
                             "encoding); fix the catalog or report it upstream") from exc
