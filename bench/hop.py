"""The per-frame hop of Celery dispatch: gateway → worker → gateway, measured with `asr.ping`.

The benchmark process plays the gateway: it publishes each ping with the same Celery app, the
same serializer and one publishing thread (as CeleryDispatcher publishes audio frames) to a
worker's own queue, and reads the worker's `asr.pong` from a channel-layer reply channel, the
path every partial and final takes. The round trip is timed with this process's clock alone.

`measure_hop` times pings to an idle worker; `HopProbe` pings every worker in the background
while a session streams, to show what the hop becomes on a worker that is busy decoding.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from .metrics import summary


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process like the stack's gateway (same Redis, same prefix)."""
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "ASR_DISPATCH", "ASR_REDIS_PREFIX"):
        os.environ[name] = env[name]
    for name in ("ASR_REGISTRY_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    import django

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    django.setup()  # applies the project's LOGGING; the benchmark keeps its own verbosity
    root.setLevel(level)
    root.handlers[:] = handlers


async def _ping(
    redis_url: str,
    queues: list[str],
    *,
    count: int,
    interval_s: float,
    warmup: int,
    timeout_s: float,
    stop: threading.Event | None = None,
) -> dict[str, dict[str, Any]]:
    """Every `interval_s`, one ping to each queue; up to `count` rounds or until `stop` is set."""
    from channels_redis.core import RedisChannelLayer

    from asrplatform.celery import app

    layer = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 30}], capacity=1000, expiry=60)
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-publish")
    sent: dict[int, tuple[str, float]] = {}  # ping id → (queue, perf_counter at publish)
    round_trips: dict[int, float] = {}
    publish_s: dict[str, list[float]] = {q: [] for q in queues}
    answered_by: dict[str, set[str]] = {q: set() for q in queues}
    all_sent = asyncio.Event()
    everything_back = asyncio.Event()

    async def receive() -> None:
        while True:
            message = await layer.receive(channel)
            arrived = time.perf_counter()
            seq = int(message.get("seq", -1)) if message.get("type") == "asr.pong" else -1
            if seq in sent and seq not in round_trips:
                queue, at = sent[seq]
                round_trips[seq] = arrived - at
                answered_by[queue].add(str(message.get("worker")))
            if all_sent.is_set() and len(round_trips) == len(sent):
                everything_back.set()

    receiver = asyncio.create_task(receive())
    started = time.perf_counter()
    rounds = 0
    try:
        while rounds < count and not (stop is not None and stop.is_set()):
            delay = started + rounds * interval_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for queue in queues:
                seq = len(sent)
                sent[seq] = (queue, time.perf_counter())
                ping = [channel, seq, time.time()]
                task = partial(app.send_task, "asr.ping", args=ping, queue=queue, ignore_result=True)
                await loop.run_in_executor(publisher, task)
                if rounds >= warmup:
                    publish_s[queue].append(time.perf_counter() - sent[seq][1])
            rounds += 1
        all_sent.set()
        if len(round_trips) == len(sent):
            everything_back.set()
        try:
            await asyncio.wait_for(everything_back.wait(), timeout_s)
        except TimeoutError:
            pass
        wall_s = time.perf_counter() - started
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
        publisher.shutdown(wait=True)
        await layer.close_pools()
    out = {}
    for queue in queues:
        ids = [seq for seq, (q, _) in sent.items() if q == queue][warmup:]
        measured = [round_trips[seq] for seq in ids if seq in round_trips]
        out[queue] = {
            "queue": queue,
            "workers": sorted(answered_by[queue]),
            "sent": len(ids),
            "received": len(measured),
            "lost": len(ids) - len(measured),
            "warmup": warmup,
            "interval_ms": interval_s * 1000,
            "wall_s": round(wall_s, 2),
            "round_trip_ms": summary(measured),
            "publish_ms": summary(publish_s[queue]),  # send_task alone, as a gateway's publishing thread sees it
        }
    return out


def measure_hop(
    redis_url: str,
    queue: str,
    *,
    count: int = 500,
    interval_s: float = 0.01,
    warmup: int = 20,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Send `count` pings (after `warmup` unmeasured ones) paced at `interval_s`; time each pong."""
    coroutine = _ping(
        redis_url, [queue], count=count + warmup, interval_s=interval_s, warmup=warmup, timeout_s=timeout_s
    )
    return asyncio.run(coroutine)[queue]


class HopProbe:
    """Pings every worker queue every `interval_s` in a thread of its own, from start() to stop()."""

    def __init__(self, redis_url: str, queues: list[str], *, interval_s: float = 0.2, warmup: int = 2):
        self.redis_url = redis_url
        self.queues = queues
        self.interval_s = interval_s
        self.warmup = warmup
        self.results: dict[str, dict[str, Any]] = {}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            self.results = asyncio.run(
                _ping(
                    self.redis_url,
                    self.queues,
                    count=10**9,
                    interval_s=self.interval_s,
                    warmup=self.warmup,
                    timeout_s=30.0,
                    stop=self._stop,
                )
            )
        except BaseException as exc:  # reported by stop(); never kills the measured stream
            self.error = exc

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bench-hop-probe", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, dict[str, Any]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self.error is not None:
            raise RuntimeError(f"hop probe failed: {self.error!r}") from self.error
        return self.results
