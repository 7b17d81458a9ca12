"""``/metrics``: load metrics from PostGIS and queue gauges, for Prometheus.

Values are read at scrape time from the durable history, so they survive a
restart of the dashboard and need no state of their own. The workers export
Dramatiq's own metrics (messages, durations, retries) on port 9191 of each
worker host through its Prometheus middleware; scrape both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.dashboard.api import workers
from service.dashboard.context import Context
from service.errors import ServiceUnavailable
from service.ledger import history
from service.ledger.history import LastLoad
from service.ledger.status import load_states, run_state
from service.pipeline.broker import queue_counts

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LoadCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("geoload_source_up", "1 if the dashboard could read the source",
                               labels=["source"])
        try:
            yield from self._history()
            up.add_metric(["postgis"], 1)
        except ServiceUnavailable:
            up.add_metric(["postgis"], 0)
        try:
            yield from self._queue()
            up.add_metric(["rabbitmq_management"], 1)
        except ServiceUnavailable:
            up.add_metric(["rabbitmq_management"], 0)
        yield self._workers()
        yield up

    def _history(self) -> Iterator[Metric]:
        with self.ctx.db() as conn:
            sums = history.totals(conn)
            states = load_states(conn)
        features = CounterMetricFamily("geoload_features_loaded",
                                       "Features loaded, over every run", labels=["dataset",
                                                                                  "layer"])
        for feature in sums.features:
            features.add_metric([feature.dataset, feature.layer], feature.loaded or 0)
        fetched = CounterMetricFamily("geoload_fetched_bytes", "Source bytes fetched",
                                      labels=["dataset"])
        loads = GaugeMetricFamily("geoload_loads", "Loads by status", labels=["dataset",
                                                                              "status"])
        per_dataset: Counter[str] = Counter()
        for load in sums.loads:
            loads.add_metric([load.dataset, load.status], load.n)
            per_dataset[load.dataset] += load.bytes
        for dataset, size in per_dataset.items():
            fetched.add_metric([dataset], size)
        failures = CounterMetricFamily("geoload_load_failures", "Loads that failed, by step",
                                       labels=["dataset", "step"])
        for failure in sums.failures:
            failures.add_metric([failure.dataset, failure.step], failure.n)
        retries = CounterMetricFamily("geoload_chunk_retries", "Chunk attempts beyond the first",
                                      labels=["dataset"])
        for retry in sums.retries:
            retries.add_metric([retry.dataset], retry.n or 0)
        yield from (features, fetched, loads, failures, retries, *self._last(sums.last),
                    self._runs(states))

    @staticmethod
    def _last(rows: list[LastLoad]) -> Iterator[Metric]:
        speed = GaugeMetricFamily("geoload_last_load_features_per_second",
                                  "Features per second of the last published load",
                                  labels=["dataset"])
        took = GaugeMetricFamily("geoload_last_load_seconds",
                                 "Duration of the last published load", labels=["dataset"])
        when = GaugeMetricFamily("geoload_last_published_timestamp_seconds",
                                 "When the live version of a dataset was published",
                                 labels=["dataset"])
        for row in rows:
            seconds, features = row.seconds or 0.0, row.features or 0
            speed.add_metric([row.dataset], features / seconds if seconds else 0.0)
            took.add_metric([row.dataset], seconds)
            when.add_metric([row.dataset], row.finished or 0.0)
        yield from (speed, took, when)

    @staticmethod
    def _runs(states: dict[str, list[str]]) -> Metric:
        runs = GaugeMetricFamily("geoload_runs", "Runs by status", labels=["status"])
        counted = Counter(run_state(s) for s in states.values())
        for status in ("queued", "running", "failing", "failed", "cancelled", "superseded",
                       "succeeded"):
            runs.add_metric([status], counted.get(status, 0))
        return runs

    def _queue(self) -> Iterator[Metric]:
        counts = queue_counts(self.ctx.settings)
        gauge = GaugeMetricFamily("geoload_queue_messages", "Messages in our RabbitMQ queues",
                                  labels=["queue", "state"])
        for state in ("ready", "unacked", "delayed", "dead"):
            gauge.add_metric([counts["queue"], state], counts[state])
        consumers = GaugeMetricFamily("geoload_queue_consumers", "Consumers of our queue",
                                      labels=["queue"])
        consumers.add_metric([counts["queue"]], counts["consumers"])
        yield from (gauge, consumers)

    def _workers(self) -> Metric:
        alive = GaugeMetricFamily("geoload_workers", "Worker processes by heartbeat state",
                                  labels=["state"])
        found = workers(self.ctx)
        alive.add_metric(["alive"], sum(1 for w in found if w["alive"]))
        alive.add_metric(["stale"], sum(1 for w in found if not w["alive"]))
        return alive


def render(ctx: Context) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoadCollector(ctx))
    return generate_latest(registry)
