"""record_failure: sent by the FailureRecorder middleware when a message is dead."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors import SETTINGS
from actors.stages import RETRY, check_arguments
from service import messages
from service.steps import failure

FAILURE_ARGUMENTS = ("actor", "args", "error_type", "error", "worker", "attempts")


@dramatiq.actor(actor_name=messages.FAILURE, time_limit=5 * 60_000, **RETRY)
def record_failure(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """(actor, args, error_type, error, worker, attempts) of the dead message."""
    check_arguments(messages.FAILURE, FAILURE_ARGUMENTS, args, kwargs, optional=2)
    actor, failed_args, error_type, error, *extra = args
    worker, attempts = (*extra, None, None)[:2]
    return failure.record_failure(SETTINGS, str(actor), failed_args, str(error_type), str(error),
                                  worker=worker, attempts=attempts).result
