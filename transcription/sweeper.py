"""Live streams a killed gateway left open: found by their stale heartbeat and closed as ``lost``.

A gateway refreshes its streams' ``last_seen_at`` every ASR_USAGE_FLUSH_S; one killed with -9
closes nothing, and its rows would stay ``active`` for ever (phantom live sessions in the usage
pages and in ``asr_live_sessions``). Every server process sweeps while it serves (the ASGI lifespan
below, wired in asrplatform.asgi), and ``manage.py asr_sweep`` sweeps once, for cron. Any number of
sweepers at once is harmless: each row is closed once, under its lock (services.session_sweep_stale).
"""

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime
from functools import partial
from typing import Any

import redis
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from asrplatform import process_state
from transcription import file_jobs, selectors, services, webhooks
from transcription.gateway.outbox import get_outbox
from transcription.redis_clients import CONNECT_TIMEOUT_S, SOCKET_TIMEOUT_S
from transcription.runner import registry

logger = logging.getLogger(__name__)


def stale_after_s() -> float:
    """ASR_SESSION_STALE_S, raised where needed so that no session still looked after is swept.

    A live gateway refreshes the row every ASR_USAGE_FLUSH_S (allow a late flush), and the client
    of a killed gateway may still resume within ASR_RESUME_GRACE_S. With Celery, a worker holding
    a killed gateway's session finalizes it ASR_WORKER_SESSION_IDLE_S after the last audio, stores
    the open utterance and closes the row itself (its finish within ASR_FINISH_TIMEOUT_S): waiting
    for that keeps the worker's close and exact audio seconds. Simpler than asking the worker
    registry in Redis which sessions are held, and it cannot lose the final either way: a final
    stored after the sweep still lands (segment_store takes finals into closed sessions).
    """
    floor = 2 * settings.ASR_USAGE_FLUSH_S + settings.ASR_RESUME_GRACE_S
    if settings.ASR_DISPATCH == "celery":
        floor += settings.ASR_WORKER_SESSION_IDLE_S + settings.ASR_FINISH_TIMEOUT_S
    return max(settings.ASR_SESSION_STALE_S, floor)


class LostSessions:
    """Closes the streams found stale in two rounds in a row with the same heartbeat.

    One look is not enough: right after a database outage every live row is stale until its
    gateway's next usage flush (sooner than the sweep interval, sweep_every_s), so the rows a round
    finds stale are only suspects, closed in the next round if their heartbeat has not moved.
    """

    def __init__(self) -> None:
        self.suspects: dict[uuid.UUID, datetime] = {}

    def sweep(self) -> int:
        """Close last round's suspects that stayed stale; returns how many."""
        older_than_s = stale_after_s()
        closed = services.session_sweep_stale(older_than_s=older_than_s, only=self.suspects) if self.suspects else 0
        self.suspects = dict(selectors.sessions_stale(older_than_s=older_than_s).values_list("pk", "last_seen_at"))
        return closed


def sweep(lost: LostSessions) -> int:
    """One round: queue again the file jobs whose worker died, close the lost streams; returns how
    many streams were closed."""
    file_jobs.requeue_stalled()
    return lost.sweep()


def sweep_every_s() -> float:
    """A quarter of the threshold, and never under two usage flushes (see sweep_periodically)."""
    return max(stale_after_s() / 4, 2 * settings.ASR_USAGE_FLUSH_S)


def database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def sweep_once() -> int:
    """For a process with no earlier contact with the database (cron): contact, wait, then sweep.

    Right after a database outage every live row is stale; the wait gives live gateways the two
    flushes they need to refresh theirs first.
    """
    database_answers()
    lost = LostSessions()
    sweep(lost)
    time.sleep(2 * settings.ASR_USAGE_FLUSH_S)
    return sweep(lost)


class QueueJanitor:
    """Celery mode: deletes the Redis queues that killed inference workers left behind.

    A queue is deleted once it was found without a worker in two rounds in a row (a sweep interval
    apart), so a worker that is starting, or missed a heartbeat in a Redis blip, keeps its own.
    """

    def __init__(self) -> None:
        self.suspects: set[str] = set()

    def sweep(self) -> int:
        if settings.ASR_DISPATCH != "celery":
            return 0
        client = _registry_redis()
        orphans = registry.orphaned_queues_sync(client, settings.ASR_REDIS_PREFIX)
        doomed, self.suspects = orphans & self.suspects, orphans - self.suspects
        for queue in sorted(doomed):
            logger.info("deleting the queue of a worker that is gone queue=%s", queue)
            client.delete(*registry.queue_redis_keys(queue))
        return len(doomed)


def _registry_redis() -> redis.Redis:
    url = settings.ASR_REGISTRY_URL

    def build() -> redis.Redis:
        return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S)

    return process_state.get(("sweeper.redis", url), build, close=redis.Redis.close)


async def sweep_periodically() -> None:
    """Sweep every sweep_every_s() until cancelled, but only in a round whose previous round reached
    the database too: at start and after an outage, live gateways first refresh the rows they could
    not write meanwhile, or a long outage would leave every live stream closed as lost."""
    in_contact = False
    janitor, lost = QueueJanitor(), LostSessions()
    while True:
        try:
            await database_sync_to_async(partial(sweep, lost) if in_contact else database_answers)()
            in_contact = True
        except Exception:
            in_contact = False
            logger.warning("sweeping lost sessions failed, retrying", exc_info=True)
        try:
            await asyncio.to_thread(janitor.sweep)
        except Exception:
            logger.warning("deleting the queues of gone workers failed, retrying", exc_info=True)
        await asyncio.sleep(sweep_every_s())


async def lifespan(scope: dict, receive: Any, send: Any) -> None:
    """ASGI lifespan: the server process sweeps from its start to its shutdown. Its outbox starts with
    it too, so that the journals of killed processes are written out at once (gateway/outbox.py), and
    so does its callback delivery loop (transcription/webhooks.py), in embedded and Celery mode alike."""
    tasks: list[asyncio.Task] = []
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            get_outbox()
            tasks = [asyncio.create_task(sweep_periodically()), asyncio.create_task(webhooks.deliver_periodically())]
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await send({"type": "lifespan.shutdown.complete"})
            return
