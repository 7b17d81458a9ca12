"""Worker middleware: record permanent failures, publish a heartbeat, give memory back.

Dramatiq's group completion callback never fires when a child fails for good,
so :class:`FailureRecorder` turns every dead message into a ``record_failure``
message; the run then ends as failed instead of hanging.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from service.errors import BadMessage
from service.identity import worker_id
from service.live import Live
from service.malloc import give_back_freed
from service.messages import FAILURE, Next, describe, to_dramatiq
from service.settings import Settings

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 5.0


class FailureRecorder(Middleware):
    """After a message is nacked as failed, send ``record_failure`` with its error."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        if not message.failed or message.actor_name == FAILURE:
            return
        exc = getattr(message, "_exception", None)
        if isinstance(exc, BadMessage):
            return  # not geoload's message: it stays in the dead-letter queue, no run fails
        error_type = type(exc).__name__ if exc else "Failed"
        error = str(exc) if exc else "the message failed"
        attempts = int(message.options.get("retries", 0)) + 1
        step = Next(FAILURE, (message.actor_name, list(message.args), error_type, error,
                              worker_id(), attempts))
        try:
            broker.enqueue(to_dramatiq(step, self.settings.queue))
        except Exception:  # the nack already happened; the dead-letter queue keeps the message
            log.exception("could not record the failure of %s", message.message_id)


class GiveBackMemory(Middleware):
    """After each message, return the memory it freed to the OS (see
    :func:`service.malloc.give_back_freed`)."""

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        give_back_freed()


class Heartbeat(Middleware):
    """This worker is alive, and here is what each of its threads is doing.

    Published when a message starts or ends, and every few seconds in between, so
    the dashboard (and a test looking for the process to kill) sees it at once.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.doing: dict[int, dict[str, Any]] = {}
        self.counts = {"processed": 0, "failed": 0}
        self.started = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._live: Live | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        threading.Thread(target=self._beat, name="geoload-heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self.doing[threading.get_ident()] = {
                "actor": message.actor_name, "message_id": message.message_id,
                "since": time.time(), **describe(message.actor_name, message.args)}
        self._publish()

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        with self._lock:
            self.doing.pop(threading.get_ident(), None)
            self.counts["failed" if exception else "processed"] += 1
        self._publish()

    after_skip_message = after_process_message  # type: ignore[assignment]

    def _publish(self) -> None:
        if self._live is None:
            self._live = Live(self.settings)
        with self._lock:
            state = {"doing": list(self.doing.values()), **self.counts,
                     "started": self.started, "queue": self.settings.queue}
        self._live.heartbeat(worker_id(), state)

    def _beat(self) -> None:
        while True:
            self._publish()
            if self._stop.wait(HEARTBEAT_EVERY_S):
                assert self._live is not None
                self._live.forget_worker(worker_id())
                return
