"""record_failure: sent by the FailureRecorder middleware when a message is dead."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors import SETTINGS
from actors.stages import RETRY
from service import messages
from service.steps import failure


@dramatiq.actor(actor_name=messages.FAILURE, time_limit=5 * 60_000, **RETRY)
def record_failure(actor: str, args: list[Any], error_type: str, error: str,
                   worker: str | None = None, attempts: int | None = None) -> dict[str, Any]:
    return failure.record_failure(SETTINGS, actor, args, error_type, error, worker=worker,
                                  attempts=attempts).result
