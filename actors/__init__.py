"""The Dramatiq layer: ``dramatiq actors`` (workers) and ``periodiq actors`` (scheduler).

The broker and every middleware are set up here, before the actor modules
are imported, as Dramatiq requires. Actors are thin: each hands its message to
the pipeline's dispatch table (:mod:`service.pipeline.steps`).
"""

from dramatiq.middleware import Retries
from periodiq import PeriodiqMiddleware

from actors.middleware import FailureRecorder, GiveBackMemory, Heartbeat
from service import settings as _config
from service.load.memory import return_large_buffers
from service.pipeline.broker import make_broker

SETTINGS = _config.get()
return_large_buffers()  # before any chunk runs: see service/load/memory.py
#: A periodic tick older than this (a scheduler or worker outage) is dropped, not run late.
PERIODIC_SKIP_DELAY_S = 600

broker = make_broker(SETTINGS)
broker.add_middleware(FailureRecorder(SETTINGS), before=Retries)
broker.add_middleware(Heartbeat(SETTINGS))
broker.add_middleware(GiveBackMemory())
broker.add_middleware(PeriodiqMiddleware(skip_delay=PERIODIC_SKIP_DELAY_S))
if SETTINGS.worker_metrics:
    from dramatiq.middleware.prometheus import Prometheus

    broker.add_middleware(Prometheus())

from actors import refresh, stages, sweep  # noqa: E402  (bind to the broker above)

__all__ = ["broker", "refresh", "stages", "sweep"]
