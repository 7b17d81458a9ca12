"""The Dramatiq layer: ``dramatiq actors`` (workers) and ``periodiq actors`` (scheduler).

The broker and every middleware are set up here, before the actor modules
are imported, as Dramatiq requires. Actors are thin: each hands its message to
the pipeline's dispatch table (:mod:`service.pipeline.steps`). In a process that runs
the pipeline itself (``geoload load --local``, :mod:`service.pipeline.local`), the same
actors bind to its in-memory broker, and live state stays in memory.
"""

from typing import Any

from dramatiq.middleware import Retries
from periodiq import PeriodiqMiddleware

from actors.middleware import FailureRecorder, GiveBackMemory, Heartbeat
from service import settings as _config
from service.live import Live
from service.load.memory import return_large_buffers
from service.pipeline import local
from service.pipeline.broker import make_broker

SETTINGS = _config.get()
return_large_buffers()  # before any chunk runs: see service/load/memory.py
#: A periodic tick older than this (a scheduler or worker outage) is dropped, not run late.
PERIODIC_SKIP_DELAY_S = 600
LOCAL = local.installed()

#: RabbitMQ, or the in-memory broker of a process that runs the pipeline itself.
broker: Any = LOCAL.broker if LOCAL else make_broker(SETTINGS)
live: Live = LOCAL.live if LOCAL else Live(SETTINGS)
broker.add_middleware(FailureRecorder(SETTINGS), before=Retries)
if LOCAL is None:  # in-process: the terminal shows what the workers do
    broker.add_middleware(Heartbeat(SETTINGS))
broker.add_middleware(GiveBackMemory())
# Also in-process: it gives actors their ``periodic`` option (no scheduler ticks there).
broker.add_middleware(PeriodiqMiddleware(skip_delay=PERIODIC_SKIP_DELAY_S))
if SETTINGS.worker_metrics and LOCAL is None:
    from dramatiq.middleware.prometheus import Prometheus

    broker.add_middleware(Prometheus())

from actors import refresh, stages, sweep  # noqa: E402  (bind to the broker above)

__all__ = ["broker", "live", "refresh", "stages", "sweep"]
