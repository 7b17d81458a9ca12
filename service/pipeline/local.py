"""The pipeline in one process: Dramatiq's in-memory broker and worker threads.

``geoload load --local`` installs a :class:`Local` before the actor modules are
imported; ``actors`` then binds the very same actors, steps and failure middleware to
its :class:`~dramatiq.brokers.stub.StubBroker` instead of RabbitMQ, and live progress
goes to memory instead of Redis. Everything durable (runs, loads, the chunk ledger, the
atomic swap) is PostGIS's as before, so exactly-once chunks, the one-transaction publish
and a failure that ends its run hold as they do with workers. What needs a broker does
not: messages live only as long as this process (a run it leaves unfinished is cancelled
on the way out, or by a later ``--local`` run if the process was killed), and no
scheduler ticks.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.results import Results
from dramatiq.results.backends.stub import StubBackend

from service.live import MemoryLive
from service.settings import Settings


@dataclass(frozen=True)
class Local:
    broker: StubBroker
    live: MemoryLive


_installed: Local | None = None


def install(settings: Settings) -> Local:
    """Make the in-memory broker Dramatiq's global, before ``actors`` is imported."""
    global _installed
    if _installed is None:
        broker = StubBroker()
        broker.add_middleware(CurrentMessage())
        broker.add_middleware(Results(backend=StubBackend(), store_results=True,
                                      result_ttl=settings.result_ttl * 1000))
        broker.declare_queue(settings.queue)
        dramatiq.set_broker(broker)
        _installed = Local(broker, MemoryLive())
    return _installed


def installed() -> Local | None:
    """The in-process pipeline, if this process runs one (``actors`` asks)."""
    return _installed


def worker(local: Local, threads: int) -> dramatiq.Worker:
    """Worker threads on the in-memory queue; started, stop them with ``.stop()``."""
    found = dramatiq.Worker(local.broker, worker_threads=threads, worker_timeout=100)
    found.start()
    return found
