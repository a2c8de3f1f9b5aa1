"""Prometheus metrics for /metrics.

Figures the database already holds (live sessions, metered audio, sessions by close reason) are
read at scrape time, so they are right across every gateway process; so is the inference backlog
(per Celery worker from the Redis registry, or this process's embedded engine pool). Final latency,
protocol errors and the dispatch hop happen inside the gateway: the histograms and counter below
are there for it to feed (``observe_final_latency``, ``count_error``, ``observe_dispatch_lag``, defined
in ``instruments`` and re-exported here). Each process counts its own; with several processes on a
host, set PROMETHEUS_MULTIPROC_DIR for all of them and /metrics sums every process's samples
(docs/deployment.md, Metrics).
"""

import logging
import time
from collections.abc import Iterator

import redis
from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from asrplatform import process_state
from transcription import selectors
from transcription.instruments import (  # re-exported: the gateway feeds them as metrics.*
    DISPATCH_LAG,
    ERRORS,
    FINAL_LATENCY,
    MULTIPROC_DIR,
    REGISTRY,
    count_error,
    observe_dispatch_lag,
    observe_final_latency,
)
from transcription.runner import registry

logger = logging.getLogger(__name__)

__all__ = [
    "DISPATCH_LAG",
    "ERRORS",
    "FINAL_LATENCY",
    "REGISTRY",
    "count_error",
    "observe_dispatch_lag",
    "observe_final_latency",
    "render",
]


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        figures = selectors.platform_figures()
        yield GaugeMetricFamily("asr_live_sessions", "Sessions streaming now (status active).", figures.live_sessions)
        yield CounterMetricFamily("asr_audio_seconds", "Audio seconds metered, all tenants.", figures.audio_seconds)
        closes = CounterMetricFamily("asr_sessions_closed", "Sessions closed, by close reason.", labels=["reason"])
        for reason, count in sorted(figures.closes_by_reason.items()):
            closes.add_metric([reason], count)
        yield closes


class BacklogCollector(Collector):
    """Work waiting for inference: per Celery worker (queue, heartbeat, lag), or the embedded pool."""

    def collect(self) -> Iterator[Metric]:
        if settings.ASR_DISPATCH == "celery":
            yield from _worker_metrics()
        elif settings.ASR_DISPATCH == "local":
            from transcription.dispatch import get_dispatcher
            from transcription.dispatch.local import LocalDispatcher

            dispatcher = get_dispatcher()
            assert isinstance(dispatcher, LocalDispatcher)
            waiting = dispatcher.scheduler.queued()
            yield GaugeMetricFamily(
                "asr_local_pool_queue_depth", "Engine calls waiting for a thread of this process's pool.", waiting
            )


def _registry_client(url: str) -> redis.Redis:
    def build() -> redis.Redis:
        return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    return process_state.get(("redis.worker_registry", url), build, close=redis.Redis.close)


def _worker_metrics() -> Iterator[Metric]:
    client = _registry_client(settings.ASR_REGISTRY_URL)
    try:
        workers = registry.live_workers_sync(client, settings.ASR_REDIS_PREFIX)
        depths = registry.queue_depths_sync(client, [w.queue for w in workers])
    except redis.RedisError as error:
        logger.warning("worker registry unreadable for /metrics error=%s", error)
        return
    now = time.time()
    depth = GaugeMetricFamily(
        "asr_worker_queue_depth", "Commands in a worker's Redis queue, not yet fetched by it.", labels=["worker"]
    )
    age = GaugeMetricFamily(
        "asr_worker_heartbeat_age_seconds", "Seconds since a worker's last heartbeat.", labels=["worker"]
    )
    lag = GaugeMetricFamily(
        "asr_worker_lag_seconds",
        "Age of the oldest audio a worker holds unprocessed (its heartbeat).",
        labels=["worker"],
    )
    for worker, queued in zip(workers, depths, strict=True):
        depth.add_metric([worker.id], queued)
        age.add_metric([worker.id], max(now - worker.beat_at, 0.0))
        lag.add_metric([worker.id], worker.lag_s)
    yield from (depth, age, lag)


def _scrape_registry() -> CollectorRegistry:
    """The instruments of this process, or in multiprocess mode every process's summed from their files
    (not this process's ``REGISTRY`` too: its samples are in the files); then the scrape-time figures."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=MULTIPROC_DIR)
    else:
        registry = REGISTRY
    registry.register(DatabaseCollector())
    registry.register(BacklogCollector())
    return registry


SCRAPE_REGISTRY = _scrape_registry()


def render() -> bytes:
    return generate_latest(SCRAPE_REGISTRY)
