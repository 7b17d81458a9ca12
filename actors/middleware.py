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
from dramatiq.middleware import Middleware, TimeLimit, TimeLimitExceeded

from service.errors import BadMessage
from service.identity import worker_id
from service.live import Live
from service.load.memory import give_back_freed
from service.pipeline.failure import record_attempt, report_dead
from service.pipeline.messages import describe
from service.settings import Settings

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 5.0


class FailureRecorder(Middleware):
    """After a message is nacked as failed, send ``record_failure`` with its error; after
    any failed attempt, keep its error in the ledger (a chunk's history of errors)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        if exception is None or isinstance(exception, BadMessage):
            return
        try:
            record_attempt(self.settings, message.actor_name, list(message.args),
                           type(exception).__name__, error_text(broker, message, exception))
        except Exception:  # noqa: BLE001 - history is worth a try, not a lost retry
            log.warning("could not keep the error of %s in its history", message.message_id,
                        exc_info=True)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        if not message.failed:
            return
        exc = getattr(message, "_exception", None)
        if isinstance(exc, BadMessage):
            return  # not geoload's message: it stays in the dead-letter queue, no run fails
        error_type = type(exc).__name__ if exc else "Failed"
        try:
            report_dead(broker, self.settings, message.actor_name, list(message.args),
                        error_type, error_text(broker, message, exc), worker_id(),
                        attempts(broker, message, exc))
        except Exception:  # the nack already happened; the dead-letter queue keeps the message
            log.exception("could not record the failure of %s", message.message_id)


def error_text(broker: dramatiq.Broker, message: Any, exc: BaseException | None) -> str:
    """What failed, for a person; never empty, though some exceptions carry no text.

    A time limit interrupts the step with a bare ``TimeLimitExceeded``: the text names
    the step and its limit, so the failure says which budget to look at.
    """
    if isinstance(exc, TimeLimitExceeded):
        return (f"{message.actor_name} ran past its time limit of "
                f"{_duration(_time_limit_ms(broker, message))} and was stopped")
    text = str(exc) if exc is not None else ""
    return text or f"{message.actor_name} failed ({type(exc).__name__ if exc else 'no error'})"


def attempts(broker: dramatiq.Broker, message: Any, exc: BaseException | None) -> int:
    """How many times the message ran. Retries counts a retried failure before it gives
    up, but not an error the actor ``throws`` (failed at once)."""
    retries = int(message.options.get("retries", 0))
    throws = message.options.get("throws") or _actor_options(broker, message).get("throws")
    counted = exc is not None and not (throws and isinstance(exc, throws))
    return retries if counted and retries else retries + 1


def _actor_options(broker: dramatiq.Broker, message: Any) -> dict[str, Any]:
    try:
        return dict(broker.get_actor(message.actor_name).options)
    except dramatiq.errors.ActorNotFound:
        return {}


def _time_limit_ms(broker: dramatiq.Broker, message: Any) -> float:
    """The limit TimeLimit applied: the message's, the actor's or the middleware's own."""
    default = next((m.time_limit for m in broker.middleware if isinstance(m, TimeLimit)), 0)
    return float(message.options.get("time_limit")
                 or _actor_options(broker, message).get("time_limit", default))


def _duration(ms: float) -> str:
    """``10 min``, ``1 min 30 s``, ``1.5 s``."""
    minutes, seconds = divmod(ms / 1000, 60)
    if not minutes:
        return f"{seconds:g} s"
    return f"{minutes:.0f} min" + (f" {seconds:g} s" if seconds else "")


class GiveBackMemory(Middleware):
    """After each message, return the memory it freed to the OS (see
    :func:`service.load.memory.give_back_freed`)."""

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

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.after_process_message(broker, message)

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
