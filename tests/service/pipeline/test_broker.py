"""The broker: what is sent arrives as sent, an unreachable RabbitMQ is said at once, and
the sweep's view of the queue counts messages held by workers as well as ready ones.

Issue 12, item 9: a fetch running for half an hour holds its message unacknowledged, and
so does a worker holding a retry until its ETA; neither is a stall.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import pika
import pytest

from service import settings as config
from service.errors import ServiceUnavailable
from service.pipeline.broker import (
    amqp_url,
    backlog,
    check,
    make_broker,
    management_ui,
    queue_names,
    send,
    send_pipelines,
)
from service.pipeline.messages import CHUNK, FETCH, FINISH, PLAN, Next
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


def _take_all(settings, queue: str) -> list[tuple[dict, int | None]]:
    """Every message on ``queue`` (acknowledged): its body and its AMQP priority."""
    taken = []
    with pika.BlockingConnection(pika.URLParameters(settings.broker_url)) as connection:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((json.loads(body), properties.priority))


def test_sent_messages_reach_the_queue_with_their_priority(settings):
    purge_queue(settings)
    broker = make_broker(settings)
    try:
        ids = send(broker, settings, [Next(CHUNK, ("run", "gadm", "ADM_4", 7)),
                                      Next(FINISH, ("run", "gadm", "ADM_3"))])
    finally:
        broker.close()
    taken = {body["message_id"]: (body, priority)
             for body, priority in _take_all(settings, settings.queue)}
    assert set(taken) == set(ids)
    chunk, finish = taken[ids[0]], taken[ids[1]]
    assert (chunk[0]["actor_name"], chunk[0]["args"], chunk[1]) == (
        CHUNK, ["run", "gadm", "ADM_4", 7], 0)
    assert (finish[0]["actor_name"], finish[1]) == (FINISH, 5)


def test_a_run_is_one_group_of_fetch_then_plan_pipelines(settings):
    purge_queue(settings)
    broker = make_broker(settings)
    try:
        ids = send_pipelines(broker, settings, [
            [Next(FETCH, ("run", "gadm")), Next(PLAN, ("run", "gadm"))],
            [Next(FETCH, ("run", "timezone")), Next(PLAN, ("run", "timezone"))]])
    finally:
        broker.close()
    ready = [body for body, _ in _take_all(settings, settings.queue)]
    assert sorted(b["message_id"] for b in ready) == sorted(first for first, _ in ids)
    for body in ready:  # the plan follows its fetch, without the fetch's result appended
        target = body["options"]["pipe_target"]
        assert body["actor_name"] == FETCH and target["actor_name"] == PLAN
        assert target["args"] == body["args"] and target["options"]["pipe_ignore"] is True


def test_rabbitmq_away_is_said_at_once_without_its_password(settings):
    away = replace(settings, broker_url="amqp://guest:s3cret@127.0.0.1:1/%2F")
    broker = make_broker(away)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        check(broker, away)
    with pytest.raises(ServiceUnavailable):
        send_pipelines(broker, away, [[Next(FETCH, ("run", "gadm"))]])
    assert time.monotonic() - started < 15
    assert "RabbitMQ" in str(caught.value) and "s3cret" not in str(caught.value)


def test_urls_for_pika_and_the_management_ui():
    fast = amqp_url("amqp://guest:guest@rabbit:5672/%2F?heartbeat=5")
    query = dict(parse_qsl(urlsplit(fast).query))
    assert query["heartbeat"] == "5" and query["socket_timeout"] == "3"
    assert queue_names("geoload") == {"queue": "geoload", "delayed": "geoload.DQ",
                                      "dead": "geoload.XQ"}
    ui = management_ui(config.from_env({"GEOLOAD_RABBITMQ_API": "http://u:pw@mq:15672/",
                                        "BROKER_URL": "amqp://u:pw@mq/prod",
                                        "GEOLOAD_QUEUE": "geo load"}))
    assert ui == "http://mq:15672/#/queues/prod/geo%20load"
