"""The Dramatiq broker: RabbitMQ for messages, Redis for results.

Both the producer and the workers build their broker here, before any actor
module is imported (Dramatiq binds actors to the broker current at import).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from service import live
from service.errors import ServiceUnavailable
from service.messages import MAX_PRIORITY, PLAN, Next, to_dramatiq
from service.settings import Settings
from service.urls import mask

#: pika's defaults wait 10 s per socket operation; a CLI should answer sooner.
FAST_FAIL = {"socket_timeout": "3", "connection_attempts": "1", "heartbeat": "60",
             "blocked_connection_timeout": "30"}


def amqp_url(url: str) -> str:
    """``url`` with fail-fast pika parameters, unless the URL sets its own."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in FAST_FAIL.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


def make_broker(settings: Settings) -> RabbitmqBroker:
    """A RabbitMQ broker with Results (Redis) and CurrentMessage, set as Dramatiq's global.

    Result keys are readable (``dramatiq-results:<queue>:<actor>:<message id>``), so the
    dashboard and scripts can find a run's results by scanning.
    """
    broker = RabbitmqBroker(url=amqp_url(settings.broker_url), confirm_delivery=True,
                            max_priority=MAX_PRIORITY)
    broker.add_middleware(CurrentMessage())
    backend = RedisBackend(client=live.client(settings, decode_responses=False),
                           use_namespace_prefix_keys=True)
    broker.add_middleware(Results(backend=backend, store_results=True,
                                  result_ttl=settings.result_ttl * 1000))
    broker.declare_queue(settings.queue)
    dramatiq.set_broker(broker)
    return broker


def check(broker: RabbitmqBroker, settings: Settings) -> None:
    """Open a channel now, so that an unreachable RabbitMQ is reported before any work."""
    try:
        broker.channel  # noqa: B018 - opening the connection is the point
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise ServiceUnavailable("RabbitMQ", mask(settings.broker_url),
                                 type(exc).__name__ + (f": {exc}" if str(exc) else "")) from exc


def send(broker: RabbitmqBroker, settings: Settings, steps: Iterable[Next]) -> list[str]:
    """Enqueue follow-up messages; returns their ids."""
    return [broker.enqueue(to_dramatiq(step, settings.queue)).message_id for step in steps]


def send_pipelines(broker: RabbitmqBroker, settings: Settings,
                   pipelines: list[list[Next]]) -> list[list[str]]:
    """One Dramatiq group of pipelines (fetch → plan per dataset); returns message ids."""
    built = []
    for steps in pipelines:
        messages = [to_dramatiq(step, settings.queue, **({"pipe_ignore": True}
                                                         if step.actor == PLAN else {}))
                    for step in steps]
        built.append(dramatiq.pipeline(messages, broker=broker))
    try:
        dramatiq.group(built, broker=broker).run()
    except (pika.exceptions.AMQPError, dramatiq.errors.ConnectionError, OSError) as exc:
        raise ServiceUnavailable("RabbitMQ", mask(settings.broker_url),
                                 type(exc).__name__ + (f": {exc}" if str(exc) else "")) from exc
    return [[m.message_id for m in p.messages] for p in built]


def backlog(broker: RabbitmqBroker, settings: Settings) -> int:
    """Messages waiting, ready, in the queue and its delay queue."""
    ready, delayed, _dead = broker.get_queue_message_counts(settings.queue)
    return int(ready) + int(delayed)
