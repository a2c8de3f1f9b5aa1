"""The per-frame hop of Celery dispatch: gateway → worker → gateway, measured with `asr.ping`.

The benchmark process plays the gateway: it publishes each ping with the same Celery app, the
same serializer and one publishing thread (as CeleryDispatcher publishes audio frames) to a
worker's own queue, and reads the worker's `asr.pong` from a channel-layer reply channel, the
path every partial and final takes. The round trip is timed with this process's clock alone.
"""

from __future__ import annotations

import asyncio
import os
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

    django.setup()


async def _ping(
    redis_url: str, queue: str, *, count: int, interval_s: float, warmup: int, timeout_s: float
) -> dict[str, Any]:
    from channels_redis.core import RedisChannelLayer

    from asrplatform.celery import app

    layer = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 30}], capacity=1000, expiry=60)
    channel = await layer.new_channel()
    loop = asyncio.get_running_loop()
    publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-publish")
    total = warmup + count
    sent: dict[int, float] = {}
    round_trips: dict[int, float] = {}
    publish_s: list[float] = []
    workers: set[str] = set()
    everything_back = asyncio.Event()

    async def receive() -> None:
        while len(round_trips) < total:
            message = await layer.receive(channel)
            arrived = time.perf_counter()
            if message.get("type") != "asr.pong":
                continue
            seq = int(message["seq"])
            if seq in sent and seq not in round_trips:
                round_trips[seq] = arrived - sent[seq]
                workers.add(str(message.get("worker")))
        everything_back.set()

    receiver = asyncio.create_task(receive())
    try:
        started = time.perf_counter()
        for seq in range(total):
            delay = started + seq * interval_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[seq] = time.perf_counter()
            task = partial(app.send_task, "asr.ping", args=[channel, seq, time.time()], queue=queue)
            await loop.run_in_executor(publisher, task)
            if seq >= warmup:
                publish_s.append(time.perf_counter() - sent[seq])
        try:
            await asyncio.wait_for(everything_back.wait(), timeout_s)
        except TimeoutError:
            pass
        sending_s = time.perf_counter() - started
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
        publisher.shutdown(wait=True)
        await layer.close_pools()
    measured = [round_trips[s] for s in range(warmup, total) if s in round_trips]
    return {
        "queue": queue,
        "workers": sorted(workers),
        "sent": count,
        "received": len(measured),
        "lost": count - len(measured),
        "warmup": warmup,
        "interval_ms": interval_s * 1000,
        "wall_s": round(sending_s, 2),
        "round_trip_ms": summary(measured),
        "publish_ms": summary(publish_s),  # send_task alone, as the gateway's publishing thread sees it
    }


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
    return asyncio.run(_ping(redis_url, queue, count=count, interval_s=interval_s, warmup=warmup, timeout_s=timeout_s))
