"""The Dramatiq broker: RabbitMQ for messages, Redis for results.

Both the producer and the workers build their broker here, before any actor
module is imported (Dramatiq binds actors to the broker current at import).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import dramatiq
import pika.exceptions
import requests
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from service import live
from service.errors import ServiceUnavailable
from service.pipeline.messages import MAX_PRIORITY, PLAN, Next, to_dramatiq
from service.settings import Settings
from service.urls import mask

log = logging.getLogger(__name__)
#: Seconds to wait for RabbitMQ's management API.
MANAGEMENT_TIMEOUT_S = 3.0
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


def send(broker: dramatiq.Broker, settings: Settings, steps: Iterable[Next]) -> list[str]:
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
    except (pika.exceptions.AMQPError, dramatiq.errors.BrokerConnectionError, OSError) as exc:
        raise ServiceUnavailable("RabbitMQ", mask(settings.broker_url),
                                 type(exc).__name__ + (f": {exc}" if str(exc) else "")) from exc
    return [[m.message_id for m in p.messages] for p in built]


def queue_names(queue: str) -> dict[str, str]:
    """Dramatiq's three queues for one name: the queue, its delay and its dead-letter queue."""
    return {"queue": queue, "delayed": f"{queue}.DQ", "dead": f"{queue}.XQ"}


def vhost(settings: Settings) -> str:
    """The broker URL's virtual host, as the management API spells it in a path."""
    path = urlsplit(settings.broker_url).path.lstrip("/")
    return quote(unquote(path) or "/", safe="")


def _management_base(settings: Settings) -> str:
    """The management API's base URL, without its credentials."""
    parts = urlsplit(settings.rabbitmq_api)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def management_ui(settings: Settings) -> str:
    """A link to the management UI's page for our queue, without any credentials."""
    queue = quote(settings.queue, safe="")
    return f"{_management_base(settings)}/#/queues/{vhost(settings)}/{queue}"


def _management_api(settings: Settings, path: str) -> Any:
    """GET ``path`` of RabbitMQ's management HTTP API, as JSON."""
    parts = urlsplit(settings.rabbitmq_api)
    url = _management_base(settings) + path
    auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    try:
        response = requests.get(url, auth=auth if parts.username else None,
                                timeout=MANAGEMENT_TIMEOUT_S)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        detail = (f"HTTP {exc.response.status_code}" if isinstance(exc, requests.HTTPError)
                  and exc.response is not None else type(exc).__name__)
        raise ServiceUnavailable("RabbitMQ management API", mask(settings.rabbitmq_api),
                                 detail) from exc


def queue_counts(settings: Settings) -> dict[str, Any]:
    """Ready, unacked, delayed and dead messages and consumers of our queue, from the
    management API (RabbitMQ refreshes them every 5 s)."""
    wanted = queue_names(settings.queue)
    columns = "name,messages,messages_ready,messages_unacknowledged,consumers"
    listed = _management_api(settings, f"/api/queues/{vhost(settings)}?columns={columns}")
    found = {q["name"]: q for q in listed if q.get("name") in wanted.values()}
    main = found.get(wanted["queue"], {})
    return {
        "queue": settings.queue,
        "exists": wanted["queue"] in found,
        "ready": main.get("messages_ready", 0),
        "unacked": main.get("messages_unacknowledged", 0),
        "delayed": found.get(wanted["delayed"], {}).get("messages", 0),
        "dead": found.get(wanted["dead"], {}).get("messages", 0),
        "consumers": main.get("consumers", 0),
        "delay_consumers": found.get(wanted["delayed"], {}).get("consumers", 0),
    }


def backlog(broker: RabbitmqBroker, settings: Settings, *, running: int = 0) -> int:
    """Messages still to run: ready, or held unacknowledged by a worker (running, prefetched,
    or a retry held until its ETA), in the queue and its delay queue; less the ``running``
    ones the caller itself holds.

    Read from the management API; where it can't be reached, only the ready messages can
    be counted (over AMQP), and the sweep relies on the ledger's progress instead.
    """
    try:
        counts = queue_counts(settings)
        total = int(counts["ready"]) + int(counts["unacked"]) + int(counts["delayed"])
    except ServiceUnavailable as exc:
        log.warning("counting only ready messages: %s", exc)
        ready, delayed, _dead = broker.get_queue_message_counts(settings.queue)
        total = int(ready) + int(delayed)
    return max(0, total - running)
