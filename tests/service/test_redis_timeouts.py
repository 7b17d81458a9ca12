"""Every Redis client geoload makes gives up on a Redis that accepts and never answers.

A Redis that stops answering without closing its connections (a frozen host, a
half-dead proxy) must cost a worker thread seconds, not forever: each client is
pointed at a loopback server that accepts connections and never sends a byte, and
each call is timed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.results import Results

from service.errors import ServiceUnavailable
from service.live import Live, ping
from service.pipeline.broker import make_broker
from service.settings import Settings

TIMEOUT_S = 1.0
#: One retry (a dropped connection is reopened once), then a little scheduling slack.
BOUND_S = 2 * TIMEOUT_S + 1.5


@pytest.fixture()
def silent_redis() -> Iterator[str]:
    """redis:// URL of a server that accepts every connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _timed(calls: dict[str, Callable[[], Any]]) -> dict[str, tuple[float | None, str]]:
    """Run every call at once; seconds each took (None: still blocked after a minute)."""
    found: dict[str, tuple[float | None, str]] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        started = time.monotonic()
        try:
            outcome = f"returned {call()!r}"
        except Exception as exc:  # noqa: BLE001 - what it raised is part of the answer
            outcome = f"raised {type(exc).__name__}"
        found[name] = (time.monotonic() - started, outcome)

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return {name: found.get(name, (None, "still blocked")) for name in calls}


def test_every_redis_client_gives_up_on_a_silent_server(settings: Settings, silent_redis: str):
    frozen = replace(settings, redis_url=silent_redis, redis_timeout=TIMEOUT_S)
    live = Live(frozen)
    broker = make_broker(frozen)
    try:
        results = next(m for m in broker.middleware if isinstance(m, Results)).backend
        message = Message(queue_name=frozen.queue, actor_name="load_chunk", args=(),
                          kwargs={}, options={})
        took = _timed({
            "live progress": lambda: live.chunk_progress("run", "gadm", "ADM_0", 0, 10),
            "heartbeat": lambda: live.heartbeat("worker", {}),
            "live read": lambda: live.chunks("run"),
            "workers": live.workers,
            "ping": lambda: ping(frozen),
            "result stored": lambda: results.store_result(message, {"ok": 1}, 60_000),
            "result read": lambda: results.get_result(message),
        })
    finally:
        broker.close()
    slow = {name: (seconds, outcome) for name, (seconds, outcome) in took.items()
            if seconds is None or seconds > BOUND_S}
    assert not slow, f"over {BOUND_S} s against a silent Redis: {slow}"
    # Best-effort writers and readers carry on; ping says which service is down.
    assert took["live read"][1] == "returned {}" and took["workers"][1] == "returned []"
    assert took["live progress"][1] == "returned None"
    assert took["ping"][1] == f"raised {ServiceUnavailable.__name__}"
    assert took["result stored"][1].startswith("raised ")
