"""Live state in Redis: features loaded per chunk so far, download bytes, worker heartbeats.

Redis holds only what changes every second; PostGIS holds what must survive.
Writes here are best effort: a Redis outage slows nobody down and loses
nothing durable, since a reader falls back to the chunk ledger in PostGIS.
Values are *set*, never incremented, so a redelivered message can't count twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.errors import ServiceUnavailable
from service.settings import Settings
from service.urls import mask

log = logging.getLogger(__name__)
PREFIX = "geoload"
#: Live keys outlive a run by a week; history is in PostGIS.
TTL_S = 7 * 24 * 3600
HEARTBEAT_TTL_S = 30


def client(settings: Settings, *, decode_responses: bool = True) -> redis.Redis:
    """A Redis client that gives up: every client geoload makes (live state, the results
    backend) comes from here.

    A Redis that stops answering without closing its connections would otherwise block
    the calling thread for as long as the library's default says (forever before
    redis-py 8). Connect and read are bounded by ``GEOLOAD_REDIS_TIMEOUT``, and a failed
    call is retried once at once: that reopens a connection a Redis restart dropped,
    without multiplying the wait on a silent one. (A blocking read, such as Dramatiq's
    ``get_result(block=True)``, must therefore wait less than that timeout.)
    """
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=settings.redis_timeout,
                                socket_timeout=settings.redis_timeout,
                                retry=Retry(NoBackoff(), 1), decode_responses=decode_responses)


def ping(settings: Settings) -> None:
    """Raise :class:`ServiceUnavailable` naming Redis when it can't be reached."""
    try:
        client(settings).ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable("Redis", mask(settings.redis_url), str(exc)) from exc


def chunk_key(dataset: str, layer: str, chunk_no: int) -> str:
    return f"{dataset}|{layer}|{chunk_no}"


class Live:
    """Best-effort writer and reader of one Redis's live state."""

    def __init__(self, settings: Settings) -> None:
        self.redis = client(settings)

    def _safely(self, what: str, *commands: tuple[str, tuple[Any, ...]]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for name, args in commands:
                getattr(pipe, name)(*args)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("live state not updated (%s): %s", what, exc)

    def chunk_progress(self, run_id: str, dataset: str, layer: str, chunk_no: int,
                       features: int) -> None:
        key = f"{PREFIX}:run:{run_id}:chunks"
        self._safely("chunk progress", ("hset", (key, chunk_key(dataset, layer, chunk_no),
                                                 features)), ("expire", (key, TTL_S)))

    def download_progress(self, run_id: str, dataset: str, done: int, total: int | None) -> None:
        key = f"{PREFIX}:run:{run_id}:downloads"
        value = json.dumps({"bytes": done, "total": total, "at": time.time()})
        self._safely("download progress", ("hset", (key, dataset, value)),
                     ("expire", (key, TTL_S)))

    def chunks(self, run_id: str) -> dict[str, int]:
        """In-flight features per chunk key; empty when Redis is unreachable."""
        try:
            raw = self.redis.hgetall(f"{PREFIX}:run:{run_id}:chunks")
        except redis.RedisError:
            return {}
        return {str(k): int(v) for k, v in raw.items()}

    def downloads(self, run_id: str) -> dict[str, dict[str, Any]]:
        try:
            raw = self.redis.hgetall(f"{PREFIX}:run:{run_id}:downloads")
        except redis.RedisError:
            return {}
        return {str(k): json.loads(v) for k, v in raw.items()}

    def heartbeat(self, worker: str, doing: dict[str, Any]) -> None:
        key = f"{PREFIX}:worker:{worker}"
        value = json.dumps({"worker": worker, "at": time.time(), **doing})
        self._safely("heartbeat", ("set", (key, value, HEARTBEAT_TTL_S)))

    def forget_worker(self, worker: str) -> None:
        self._safely("worker exit", ("delete", (f"{PREFIX}:worker:{worker}",)))

    def workers(self) -> list[dict[str, Any]]:
        try:
            keys = list(self.redis.scan_iter(f"{PREFIX}:worker:*", count=500))
            values = self.redis.mget(keys) if keys else []
        except redis.RedisError:
            return []
        return [json.loads(v) for v in values if v]


class MemoryLive(Live):
    """The same live state in this process's memory: ``geoload load --local`` has no Redis.

    Its workers are threads of the process that draws the progress bars, so a dict
    shared under a lock is all the live state needs.
    """

    def __init__(self) -> None:  # no Redis client
        self._lock = threading.Lock()
        self._chunks: dict[str, dict[str, int]] = {}
        self._downloads: dict[str, dict[str, dict[str, Any]]] = {}
        self._workers: dict[str, dict[str, Any]] = {}

    def chunk_progress(self, run_id: str, dataset: str, layer: str, chunk_no: int,
                       features: int) -> None:
        with self._lock:
            self._chunks.setdefault(run_id, {})[chunk_key(dataset, layer, chunk_no)] = features

    def download_progress(self, run_id: str, dataset: str, done: int, total: int | None) -> None:
        with self._lock:
            self._downloads.setdefault(run_id, {})[dataset] = {
                "bytes": done, "total": total, "at": time.time()}

    def chunks(self, run_id: str) -> dict[str, int]:
        with self._lock:
            return dict(self._chunks.get(run_id, {}))

    def downloads(self, run_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._downloads.get(run_id, {}))

    def heartbeat(self, worker: str, doing: dict[str, Any]) -> None:
        with self._lock:
            self._workers[worker] = {"worker": worker, "at": time.time(), **doing}

    def forget_worker(self, worker: str) -> None:
        with self._lock:
            self._workers.pop(worker, None)

    def workers(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._workers.values())
