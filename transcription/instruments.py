"""The Prometheus instruments the gateway and the dispatcher feed as things happen.

They live apart from ``metrics`` (which reads the database, the worker registry and the dispatcher
at scrape time) so that the code feeding them needs nothing above it: ``dispatch/celery`` records
the dispatch hop here without importing ``metrics``, which imports ``dispatch``.

Multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (prometheus_client reads it once, when first
imported), every process writes its samples to files there and ``metrics`` sums them all at scrape
time. There are no gauges here: a gauge would need a ``multiprocess_mode``, and a live one
(``livesum``...) its process marked dead when it ends (:func:`mark_process_dead`).
"""

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
REGISTRY = CollectorRegistry()
FINAL_LATENCY = Histogram(
    "asr_final_latency_seconds",
    "From the end of an utterance's audio to its final being sent.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
    registry=REGISTRY,
)
ERRORS = Counter("asr_errors", "Protocol errors sent to clients, by code.", ["code"], registry=REGISTRY)
SUPPRESSED = Counter(
    "asr_suppressed_outputs",
    "Decoder output kept from finals, by reason: no_speech (noise's stock phrases), repetition (loops cut).",
    ["reason"],
    registry=REGISTRY,
)
DISPATCH_LAG = Histogram(
    "asr_dispatch_lag_seconds",
    "From the gateway receiving a session's audio (the oldest piece of a task) to its Celery worker taking it"
    " (worker clock minus gateway clock).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)

DECODE_BATCH = Histogram(
    "asr_decode_batch_size",
    "Whisper decodes run together in one batch (ASR_BATCH_WINDOW_MS; nothing is counted while it is off).",
    buckets=(1, 2, 4, 8, 16, 32),
    registry=REGISTRY,
)


def observe_final_latency(seconds: float) -> None:
    FINAL_LATENCY.observe(seconds)


def count_error(code: str) -> None:
    ERRORS.labels(code=code).inc()


def count_suppressed(reason: str) -> None:
    SUPPRESSED.labels(reason=reason).inc()


def observe_dispatch_lag(seconds: float) -> None:
    DISPATCH_LAG.observe(max(seconds, 0.0))  # hosts' clocks may disagree by a little


def observe_decode_batch(size: int) -> None:
    DECODE_BATCH.observe(size)


def mark_process_dead(pid: int) -> None:
    """Multiprocess mode: a process that ends drops its live gauges; its counts stay in the sums."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)
