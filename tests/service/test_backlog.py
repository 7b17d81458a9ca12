"""The sweep's view of the queue: messages held by workers count as well as ready ones.

Issue 12, item 9: a fetch running for half an hour holds its message unacknowledged, and
so does a worker holding a retry until its ETA; neither is a stall.
"""

from __future__ import annotations

import time

import pika

from service.broker import backlog, make_broker, send
from service.messages import FETCH, Next
from tests.conftest import purge_queue

#: RabbitMQ's management statistics refresh every 5 s.
STATS_S = 12


def wait_for_backlog(broker, settings, expected: int, **kwargs: int) -> int:
    deadline = time.monotonic() + STATS_S
    while (found := backlog(broker, settings, **kwargs)) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return found


def test_messages_held_unacknowledged_are_backlog(settings):
    purge_queue(settings)
    broker = make_broker(settings)
    send(broker, settings, [Next(FETCH, ("20260101T000000-000000", "timezone"))])
    params = pika.URLParameters(settings.broker_url)
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        channel.basic_publish("", f"{settings.queue}.DQ", b"{}")  # a retry waiting for its ETA
        held = [channel.basic_get(queue, auto_ack=False)[0]
                for queue in (settings.queue, f"{settings.queue}.DQ")]
        assert all(held)  # both taken, as a worker takes them: unacknowledged
        assert broker.get_queue_message_counts(settings.queue)[:2] == (0, 0)
        assert wait_for_backlog(broker, settings, 2) == 2
        # The sweep's own message, which the worker running it holds, is not backlog.
        assert backlog(broker, settings, running=1) == 1
    purge_queue(settings)
    broker.close()
