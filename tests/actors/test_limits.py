"""Every message stays well inside its TimeLimit and RabbitMQ's 30-minute consumer timeout."""

from __future__ import annotations

import pytest

CONSUMER_TIMEOUT_MS = 30 * 60_000


@pytest.fixture(scope="module")
def actor_options(base_settings):
    import actors

    return {name: actor.options for name, actor in actors.broker.actors.items()}


def test_every_message_ends_before_the_consumer_timeout(actor_options):
    assert {"fetch_source", "plan_load", "load_chunk", "finish_layer", "publish_dataset",
            "record_failure"} <= set(actor_options)
    for name, options in actor_options.items():
        assert options["time_limit"] < CONSUMER_TIMEOUT_MS, name
        # a retried message waits unacked in the delay queue until its ETA
        assert options["max_backoff"] + options["time_limit"] < CONSUMER_TIMEOUT_MS, name


def test_permanent_errors_are_not_retried(actor_options):
    from service.errors import BadMessage, BadSource, UpstreamUnavailable

    for name, options in actor_options.items():
        assert issubclass(BadSource, options["throws"]), name
        assert issubclass(BadMessage, options["throws"]), name
        assert not issubclass(UpstreamUnavailable, options["throws"]), name


def test_a_chunk_is_far_shorter_than_its_limit(settings, db, workers):
    """On the end-to-end data no chunk took more than a small fraction of its limit."""
    from tests.support.runs import enqueue_and_wait

    enqueue_and_wait(settings, "gadm", "timezone")
    slowest = db.execute("SELECT max(seconds) FROM geoload.chunks").fetchone()[0]
    import actors

    limit_s = actors.broker.get_actor("load_chunk").options["time_limit"] / 1000
    assert 0 < slowest < limit_s / 100
