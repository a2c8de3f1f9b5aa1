"""Prometheus metrics for /metrics.

Figures the database already holds (live sessions, metered audio, sessions by close reason) are
read at scrape time, so they are right across every gateway process. Final latency and protocol
errors happen inside the gateway: the histogram and counter below are there for it to feed
(``observe_final_latency``, ``count_error``); in a multi-process deployment set
PROMETHEUS_MULTIPROC_DIR so every process's samples are summed.
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from transcription import selectors

REGISTRY = CollectorRegistry()
FINAL_LATENCY = Histogram(
    "asr_final_latency_seconds",
    "From the end of an utterance's audio to its final being sent.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
    registry=REGISTRY,
)
ERRORS = Counter("asr_errors", "Protocol errors sent to clients, by code.", ["code"], registry=REGISTRY)


def observe_final_latency(seconds: float) -> None:
    FINAL_LATENCY.observe(seconds)


def count_error(code: str) -> None:
    ERRORS.labels(code=code).inc()


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        figures = selectors.platform_figures()
        yield GaugeMetricFamily("asr_live_sessions", "Sessions streaming now (status active).", figures.live_sessions)
        yield CounterMetricFamily("asr_audio_seconds", "Audio seconds metered, all tenants.", figures.audio_seconds)
        closes = CounterMetricFamily("asr_sessions_closed", "Sessions closed, by close reason.", labels=["reason"])
        for reason, count in sorted(figures.closes_by_reason.items()):
            closes.add_metric([reason], count)
        yield closes


REGISTRY.register(DatabaseCollector())


def render() -> bytes:
    return generate_latest(REGISTRY)
