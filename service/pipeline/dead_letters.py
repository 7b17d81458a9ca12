"""Dead letters: messages that failed for good, kept in ``<queue>.XQ``, read and requeued.

Dead letters are read, requeued and discarded over AMQP with pika: a message is
taken off ``<queue>.XQ`` unacknowledged, republished to its queue with a fresh
retry budget, and only then acknowledged, so a crash in between duplicates a
message (which every geoload step tolerates) but never loses one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pika.exceptions

from service.errors import ServiceUnavailable
from service.pipeline.broker import amqp_url, queue_names
from service.pipeline.messages import describe
from service.settings import Settings
from service.urls import mask

#: Most dead letters listed or searched at once.
PEEK_LIMIT = 200


@contextmanager
def _channel(settings: Settings) -> Iterator[Any]:
    """A confirmed channel; unacked messages go back to their queue when it closes."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url(settings.broker_url)))
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise ServiceUnavailable("RabbitMQ", mask(settings.broker_url),
                                 type(exc).__name__) from exc
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel
    except pika.exceptions.AMQPError as exc:
        raise ServiceUnavailable("RabbitMQ", mask(settings.broker_url),
                                 type(exc).__name__) from exc
    finally:
        if connection.is_open:
            connection.close()


def _held(channel: Any, queue: str, limit: int) -> Iterator[tuple[Any, Any, bytes]]:
    """Take up to ``limit`` messages off ``queue`` without acknowledging them.

    A queue that was never declared (no message ever died) holds nothing.
    """
    for _ in range(limit):
        try:
            method, properties, body = channel.basic_get(queue, auto_ack=False)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return
            raise
        if method is None:
            return
        yield method, properties, body


def _decode(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def summary(body: bytes, properties: Any) -> dict[str, Any]:
    """What a person needs to know about a dead letter."""
    data = _decode(body)
    raw = data.get("options")
    options: dict[str, Any] = raw if isinstance(raw, dict) else {}
    actor = str(data.get("actor_name", "?"))
    deaths = (properties.headers or {}).get("x-death") or [{}]
    trace = str(options.get("traceback") or "").strip().splitlines()
    return {
        "message_id": data.get("message_id"),
        "actor": actor,
        "args": data.get("args"),
        **describe(actor, data.get("args")),
        "attempts": int(options.get("retries") or 0) + 1,
        "error": trace[-1] if trace else None,
        "enqueued_at": data.get("message_timestamp"),
        "dead_reason": deaths[0].get("reason"),
    }


def dead_letters(settings: Settings, limit: int = 50) -> list[dict[str, Any]]:
    """Dead-lettered messages of our queue, oldest first; they stay where they are."""
    with _channel(settings) as channel:
        return [summary(body, props) for _, props, body in
                _held(channel, queue_names(settings.queue)["dead"], limit)]


def requeue(settings: Settings, message_id: str) -> int:
    """Move one dead letter (or ``all``) back to its queue with its retries reset."""
    return _take(settings, message_id, republish=True)


def discard(settings: Settings, message_id: str) -> int:
    """Drop one dead letter (or ``all``) for good."""
    return _take(settings, message_id, republish=False)


def _take(settings: Settings, message_id: str, *, republish: bool) -> int:
    dead = queue_names(settings.queue)["dead"]
    taken = 0
    with _channel(settings) as channel:
        for method, properties, body in _held(channel, dead, PEEK_LIMIT):
            data = _decode(body)
            if message_id != "all" and data.get("message_id") != message_id:
                continue
            if republish:
                _republish(channel, settings, data, body, properties)
            channel.basic_ack(method.delivery_tag)
            taken += 1
            if message_id != "all":
                break
    return taken


def _republish(channel: Any, settings: Settings, data: dict[str, Any], body: bytes,
               properties: Any) -> None:
    """Back to the canonical queue, as Dramatiq enqueues, with a fresh retry budget."""
    queue = str(data.get("queue_name") or settings.queue).removesuffix(".DQ").removesuffix(".XQ")
    if data:
        options = dict(data.get("options") or {})
        for spent in ("retries", "traceback", "eta"):
            options.pop(spent, None)
        body = json.dumps({**data, "queue_name": queue, "options": options},
                          separators=(",", ":")).encode()
    channel.basic_publish(exchange="", routing_key=queue, body=body, mandatory=True,
                          properties=pika.BasicProperties(delivery_mode=2,
                                                          priority=properties.priority))
