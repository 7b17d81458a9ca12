"""Live state in Redis: set, never incremented; expiring; best effort when Redis is away."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace

import pytest

from service.errors import ServiceUnavailable
from service.live import HEARTBEAT_TTL_S, PREFIX, TTL_S, Live, chunk_key, ping


@pytest.fixture()
def live(settings) -> Live:
    return Live(settings)


def _run_id() -> str:
    return f"test-{secrets.token_hex(4)}"


def test_chunk_progress_is_set_so_a_redelivered_chunk_never_counts_twice(live):
    run_id = _run_id()
    for features in (5, 5, 9):  # a duplicate delivery reports the same count again
        live.chunk_progress(run_id, "gadm", "ADM_1", 3, features)
    live.chunk_progress(run_id, "gadm", "ADM_2", 0, 2)
    assert live.chunks(run_id) == {chunk_key("gadm", "ADM_1", 3): 9,
                                   chunk_key("gadm", "ADM_2", 0): 2}
    ttl = live.redis.ttl(f"{PREFIX}:run:{run_id}:chunks")
    assert TTL_S - 60 < ttl <= TTL_S


def test_download_progress_says_how_far_and_when(live):
    run_id = _run_id()
    before = time.time()
    live.download_progress(run_id, "timezone", 1_000, 4_000)
    live.download_progress(run_id, "gadm", 10, None)
    got = live.downloads(run_id)
    assert got["timezone"]["bytes"] == 1_000 and got["timezone"]["total"] == 4_000
    assert got["gadm"]["total"] is None
    assert before <= got["timezone"]["at"] <= time.time()


def test_a_heartbeat_lives_for_its_ttl_and_goes_when_the_worker_says_so(live):
    worker = f"testhost:{secrets.randbelow(10**9)}"
    live.heartbeat(worker, {"queue": "q", "doing": []})
    mine = [w for w in live.workers() if w["worker"] == worker]
    assert len(mine) == 1 and mine[0]["queue"] == "q"
    assert 0 < live.redis.ttl(f"{PREFIX}:worker:{worker}") <= HEARTBEAT_TTL_S
    live.forget_worker(worker)
    assert not [w for w in live.workers() if w["worker"] == worker]


def test_without_redis_writes_are_skipped_and_reads_are_empty(settings, caplog):
    away = replace(settings, redis_url="redis://:secret@127.0.0.1:1/0", redis_timeout=1.0)
    live = Live(away)
    started = time.monotonic()
    live.chunk_progress("r", "gadm", "ADM_1", 0, 1)  # best effort: no exception
    live.heartbeat("w:1", {})
    assert live.chunks("r") == {} and live.downloads("r") == {} and live.workers() == []
    assert time.monotonic() - started < 5
    assert "live state not updated" in caplog.text
    with pytest.raises(ServiceUnavailable, match="Redis") as caught:
        ping(away)
    assert "secret" not in str(caught.value) and ":***@127.0.0.1:1" in str(caught.value)
