"""The Dramatiq layer: ``dramatiq actors`` imports this package.

The broker and every middleware are set up here, before the actor modules
are imported, as Dramatiq requires. Actors are thin: each calls one function
of :mod:`service.steps` and sends the follow-up messages it returns.
"""

from dramatiq.middleware import Retries

from actors.middleware import FailureRecorder, Heartbeat
from service import settings as _config
from service.broker import make_broker

SETTINGS = _config.get()
broker = make_broker(SETTINGS)
broker.add_middleware(FailureRecorder(SETTINGS), before=Retries)
broker.add_middleware(Heartbeat(SETTINGS))

from actors import failures, stages  # noqa: E402  (actors bind to the broker above)

__all__ = ["broker", "failures", "stages"]
