"""sweep_stalled_loads: every 10 minutes, re-send the next messages of loads that stalled."""

from __future__ import annotations

from typing import Any

import dramatiq
from periodiq import cron

from actors import SETTINGS, broker
from actors.stages import MINUTE_MS, RETRY
from service.pipeline import messages, sweep
from service.pipeline.broker import backlog


@dramatiq.actor(actor_name=messages.SWEEP, periodic=cron("*/10 * * * *"),
                time_limit=5 * MINUTE_MS, **RETRY)
def sweep_stalled_loads() -> dict[str, Any]:
    # This message is held, unacknowledged, by the worker running it: not backlog.
    return sweep.sweep(SETTINGS, broker, queued=backlog(broker, SETTINGS, running=1))
