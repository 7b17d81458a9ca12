"""refresh_datasets: the scheduler's tick, sent by ``periodiq actors`` on GEOLOAD_REFRESH_CRON.

Run exactly one scheduler; a second one, or a redelivered tick, still loads a
version only once, because :func:`service.pipeline.refresh.tick` claims each
(dataset, version) before it starts a run.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from actors import SETTINGS, broker
from actors.stages import MINUTE_MS, RETRY
from service.pipeline import messages, refresh


@dramatiq.actor(actor_name=messages.REFRESH, periodic=refresh.schedule(SETTINGS),
                time_limit=10 * MINUTE_MS, **RETRY)
def refresh_datasets() -> dict[str, Any]:
    """Ask upstream for each dataset's version; enqueue one run of those that changed."""
    return refresh.tick(SETTINGS, broker, origin="scheduler")
