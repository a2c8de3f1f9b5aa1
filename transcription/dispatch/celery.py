"""Distributed dispatch: each session is pinned to one Celery inference worker.

The gateway picks the least-loaded live worker from the Redis registry, sends the session's
commands to that worker's own queue in order, and reads results from a channel-layer channel owned
by the session's handle (read by the handle itself, so results flow even while the consumer is
busy ending the session). A monitor watches the worker's heartbeat; if it stops, the session moves
to another live worker and the audio of its still-open utterance is replayed. Results from an
earlier assignment are told apart by ``epoch`` and dropped, and finals already delivered are never
repeated.

Redis may blink (a restart): commands and result reads are retried for ``ASR_REDIS_OUTAGE_S``
before the session fails, and if Redis came back empty, the session is opened afresh on its worker
and its open utterance replayed, as after a failover, so nothing lost in flight is missed.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from transcription import instruments
from transcription.dispatch.base import Dispatcher
from transcription.dispatch.replay import ReplayBuffer
from transcription.engine import SessionConfig, TranscriptEvent
from transcription.redis_clients import async_redis
from transcription.runner import registry
from transcription.runner.contract import EngineFailure, EventSink, OpenSession, SessionHandle, WorkerRefusal

logger = logging.getLogger(__name__)

# The broker or Redis stayed away longer than ASR_REDIS_OUTAGE_S: what the client is told.
REDIS_LOST = "Lost contact with the message broker (Redis); the session cannot go on."
# A live session's key in Redis (registry.session_key), renewed by its monitor every half second.
SESSION_KEY_TTL_S = 60.0
PUBLISH_ERRORS = (KombuError, RedisError, OSError)


class BrokerUnavailable(Exception):
    """A command could not be published within the outage budget (or the session ended meanwhile)."""


class CelerySessionHandle(SessionHandle):
    def __init__(
        self, dispatcher: "CeleryDispatcher", session_id: str, tenant_id: int, config: SessionConfig, sink: EventSink
    ):
        self.dispatcher = dispatcher
        self.session_id = session_id
        self.tenant_id = tenant_id
        self.config = config
        self.sink = sink
        self.replay = ReplayBuffer(config, max_seconds=config.max_utterance_s + 5.0)
        self.epoch = 0  # the assignment results must come from: new at each open, and when Redis lost data
        self.worker: registry.WorkerInfo | None = None
        self.stale = False  # the worker's copy of the session missed commands: open it afresh and replay
        self.next_segment = 0
        self.finish_reason: str | None = None
        self.opened = asyncio.Event()
        self.finished = asyncio.Event()
        self.lock = asyncio.Lock()  # keeps audio in order across a failover's replay
        self.tasks: list[asyncio.Task] = []
        # Audio not yet sent: it goes in tasks of ASR_CELERY_AUDIO_STEP_MS of audio (see push_audio).
        self.step_bytes = config.bytes_per_second * settings.ASR_CELERY_AUDIO_STEP_MS // 1000
        self.held: list[bytes] = []
        self.held_bytes = 0
        self.held_since = 0.0  # wall time of the oldest held piece: the task's sent_at
        self.flush_timer: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        self.layer = get_channel_layer()
        self.reply_channel = await self.layer.new_channel()
        await registry.mark_session(self._redis(), settings.ASR_REDIS_PREFIX, self.session_id, SESSION_KEY_TTL_S)
        self.tasks.append(asyncio.create_task(self._read()))
        try:
            await self._assign(exclude=set(), max_lag_s=settings.ASR_WORKER_MAX_LAG_S)
        except Exception:
            self._stop_tasks()
            raise
        self.tasks.append(asyncio.create_task(self._monitor()))

    async def push_audio(self, data: bytes) -> None:
        """Hold the audio until a VAD step of it is here (or it has waited that long), then send it
        as one task: the worker's VAD takes audio in those steps anyway, so no cut comes later."""
        async with self.lock:
            if self.finished.is_set():
                return
            self.replay.append(data)
            if not self.held:
                self.held_since = time.time()
            self.held.append(data)
            self.held_bytes += len(data)
            if self.held_bytes >= self.step_bytes:
                await self._send_held()
            elif self.flush_timer is None:
                delay_s = settings.ASR_CELERY_AUDIO_STEP_MS / 1000
                self.flush_timer = asyncio.get_running_loop().call_later(delay_s, self._flush_later)

    def _flush_later(self) -> None:
        self.flush_timer = None
        if self.held:
            task = asyncio.create_task(self._flush_held())
            self.tasks.append(task)
            task.add_done_callback(lambda done: self.tasks.remove(done) if done in self.tasks else None)

    async def _flush_held(self) -> None:
        async with self.lock:
            await self._send_held()

    async def _send_held(self) -> None:
        """Send the held audio as one task (the lock held)."""
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if not self.held:
            return
        data = self.held[0] if len(self.held) == 1 else b"".join(self.held)
        self.held, self.held_bytes = [], 0
        await self._command("asr.audio", data, self.held_since)

    def _drop_held(self) -> None:
        """Forget the held audio: a replay from ``self.replay`` (which holds it) sends it instead."""
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        self.held, self.held_bytes = [], 0

    async def finalize(self) -> None:
        async with self.lock:
            await self._send_held()
            await self._command("asr.finalize")

    async def finish(self, reason: str) -> None:
        try:
            if not self.finished.is_set():
                async with self.lock:
                    self.finish_reason = reason
                    await self._send_held()
                    await self._command("asr.finish", reason)
                try:
                    await asyncio.wait_for(asyncio.shield(self.finished.wait()), settings.ASR_FINISH_TIMEOUT_S)
                except TimeoutError:
                    logger.error(
                        "worker did not finish session_id=%s worker=%s", self.session_id, self.worker and self.worker.id
                    )
        finally:
            self._stop_tasks()
            await self._forget_reply_channel()

    async def _command(self, task: str, *args: Any) -> None:
        """Publish a command of the current assignment (the lock held); if the broker stays away, fail."""
        if self.finished.is_set():
            return
        try:
            await self._publish(task, [self.session_id, self.epoch, *args])
        except BrokerUnavailable:
            await self._fail("internal_error", REDIS_LOST)

    # --- assignment and failover -------------------------------------------------------------

    async def _assign(self, *, exclude: set[str], max_lag_s: float) -> None:
        """Pin the session to a worker and wait until that worker holds it."""
        while True:
            workers = await registry.live_workers(self._redis(), settings.ASR_REDIS_PREFIX)
            worker = registry.choose_worker(workers, max_lag_s=max_lag_s, exclude=exclude)
            self.epoch += 1
            self.worker = worker
            self.opened.clear()
            await self._publish_open()
            try:
                await asyncio.wait_for(self.opened.wait(), settings.ASR_WORKER_OPEN_TIMEOUT_S)
                logger.info("session pinned session_id=%s worker=%s epoch=%s", self.session_id, worker.id, self.epoch)
                return
            except TimeoutError:
                logger.warning("worker did not open session worker=%s session_id=%s", worker.id, self.session_id)
                exclude.add(worker.id)

    async def _publish_open(self) -> None:
        message = OpenSession(
            session_id=self.session_id,
            tenant_id=self.tenant_id,
            config=self.config,
            resume_at_s=self.replay.start_s,
            first_segment=self.next_segment,
        )
        await self._publish("asr.open", message.task_args(reply_channel=self.reply_channel, epoch=self.epoch))

    async def _monitor(self) -> None:
        """Move the session off a dead worker, or replay it when Redis lost its commands; never dies.

        Only successful reads count: a Redis error is logged and the check retried. A missing
        heartbeat means a dead worker, except within a TTL of Redis being away, slow or found empty
        (this session's key gone): then it may be Redis's doing, and the worker gets that long to beat.
        """
        period = min(0.5, settings.ASR_WORKER_TTL_S / 4)
        errors = registry.RedisOutage(float("inf"))
        doubt_until = 0.0
        while not self.finished.is_set():
            await asyncio.sleep(period)
            assert self.worker is not None
            asked = time.monotonic()
            try:
                alive, kept = await registry.check_session(
                    self._redis(), settings.ASR_REDIS_PREFIX, self.worker.id, self.session_id, SESSION_KEY_TTL_S
                )
                now = time.monotonic()
                if errors.failures or not kept or now - asked > period:
                    doubt_until = now + settings.ASR_WORKER_TTL_S
                errors.recovered()
                if not kept:
                    logger.warning("Redis lost its data, replaying session_id=%s", self.session_id)
                    self.epoch += 1  # the worker's results from before may miss audio: dropped from now on
                    self.stale = True
                if alive and self.stale:
                    await self._reopen(exclude=set())
                elif not alive and now >= doubt_until:
                    await self._failover()
            except BrokerUnavailable:
                await self._fail("internal_error", REDIS_LOST)
            except Exception:
                logger.warning(
                    "checking the worker failed, retrying session_id=%s worker=%s attempt=%s",
                    self.session_id,
                    self.worker.id,
                    errors.failures + 1,
                    exc_info=True,
                )
                await errors.wait()

    async def _failover(self) -> None:
        dead = self.worker.id if self.worker else "?"
        logger.warning("worker lost, moving session session_id=%s worker=%s", self.session_id, dead)
        try:
            await self._reopen(exclude={dead})
        except WorkerRefusal:
            await self._fail("no_capacity", "The inference worker was lost and no other worker is available.")

    async def _reopen(self, *, exclude: set[str]) -> None:
        """Open the session afresh, on another worker than ``exclude``'s or on its own, and replay the
        audio of its open utterance. ``stale`` stays set until all of it is published."""
        async with self.lock:
            self.stale = True
            self._drop_held()  # in the replay below
            if exclude:
                # A session that is already running must move even if every worker is busy.
                await self._assign(exclude=exclude, max_lag_s=float("inf"))
            else:
                self.epoch += 1
                await self._publish_open()
            for data in self.replay.chunks():
                await self._publish("asr.audio", [self.session_id, self.epoch, data, time.time()])
            if self.finish_reason is not None:
                await self._publish("asr.finish", [self.session_id, self.epoch, self.finish_reason])
            self.stale = False
        logger.info(
            "session replayed session_id=%s worker=%s epoch=%s from_s=%.2f",
            self.session_id,
            self.worker and self.worker.id,
            self.epoch,
            self.replay.start_s,
        )

    async def _fail(self, code: str, message: str) -> None:
        if self.finished.is_set():
            return
        try:
            await self.sink(EngineFailure(code=code, message=message))
        finally:
            self.finished.set()

    # --- results ---------------------------------------------------------------------------------

    async def _read(self) -> None:
        """Deliver results until the session ends: a Redis error is retried for ASR_REDIS_OUTAGE_S
        (results wait in Redis), and a failure to deliver one result is logged, never the end."""
        outage = registry.RedisOutage(settings.ASR_REDIS_OUTAGE_S)
        while True:
            try:
                message = await self.layer.receive(self.reply_channel)
            except Exception:
                logger.warning(
                    "reading results failed session_id=%s attempt=%s",
                    self.session_id,
                    outage.failures + 1,
                    exc_info=outage.failures == 0,
                )
                if not await outage.wait():
                    await self._fail("internal_error", REDIS_LOST)
                    return
                continue
            outage.recovered()
            try:
                await self._on_message(message)
            except Exception:
                logger.exception(
                    "delivering a result failed session_id=%s type=%s", self.session_id, message.get("type")
                )

    async def _on_message(self, message: dict) -> None:
        if message.get("epoch") != self.epoch:
            return  # from a worker this session has moved away from
        for lag_s in message.get("dispatch_lag_s", ()):  # absent from workers older than this gateway
            instruments.observe_dispatch_lag(lag_s)
        kind = message["type"]
        if kind == "asr.opened":
            self.opened.set()
        elif kind == "asr.event":
            await self._on_event(TranscriptEvent.from_message(message["event"]))
        elif kind == "asr.failure":
            await self._fail(message["code"], message["message"])
        elif kind == "asr.finished":
            self.finished.set()

    async def _on_event(self, event: TranscriptEvent) -> None:
        if event.segment < self.next_segment:
            return  # already final (e.g. produced again from replayed audio)
        if event.is_final:
            self.next_segment = event.segment + 1
            self.replay.trim_to(event.end, channel=event.channel)
        await self.sink(event)

    async def _publish(self, task: str, args: list) -> None:
        """Send one task to the session's worker, retrying while the broker is away (ASR_REDIS_OUTAGE_S)."""
        assert self.worker is not None
        outage = registry.RedisOutage(settings.ASR_REDIS_OUTAGE_S)
        while True:
            try:
                await self.dispatcher.publish(task, args, self.worker.queue)
                return
            except PUBLISH_ERRORS as error:
                logger.warning(
                    "publishing failed session_id=%s task=%s attempt=%s error=%s",
                    self.session_id,
                    task,
                    outage.failures + 1,
                    error,
                )
                if self.finished.is_set() or not await outage.wait():
                    raise BrokerUnavailable(task) from error

    def _redis(self) -> aioredis.Redis:
        return self.dispatcher.redis()

    def _stop_tasks(self) -> None:
        self._drop_held()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def _forget_reply_channel(self) -> None:
        """Drop this session's entry from the channel layer's receive buffer once its reader is gone.

        channels_redis (4.3) keeps a queue per channel in ``receive_buffer`` and leaves it behind,
        empty, when a ``receive()`` is cancelled while it holds the layer's receive lock (as the
        only reader in the process, it nearly always does): one entry per session, kept for good.
        """
        others = [task for task in self.tasks if task is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)
        buffer = getattr(self.layer, "receive_buffer", None)
        if buffer is not None:
            buffer.pop(self.reply_channel, None)


class CeleryDispatcher(Dispatcher):
    def __init__(self) -> None:
        # One thread publishes every task of this gateway process, in order, off the event loop.
        self.publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-publish")

    def redis(self) -> aioredis.Redis:
        return async_redis(settings.ASR_REGISTRY_URL)

    def close(self) -> None:
        self.publisher.shutdown(wait=False)

    async def publish(self, task: str, args: list, queue: str) -> None:
        from asrplatform.celery import app

        # ignore_result: otherwise Celery subscribes this process to each task's result in Redis (and
        # unsubscribes when the AsyncResult is collected): two Redis commands per audio frame for
        # results that never come; ours travel through the channel layer.
        await asyncio.get_running_loop().run_in_executor(
            self.publisher, partial(app.send_task, task, args=args, queue=queue, ignore_result=True)
        )

    @property
    def engine_name(self) -> str:
        return "whisper+fsmn-vad (celery)"

    def languages(self) -> tuple[str, ...]:
        return ("en",)

    async def open_session(
        self,
        *,
        session_id: str,
        tenant_id: int,
        config: SessionConfig,
        sink: EventSink,
        resume_at_s: float = 0.0,
        first_segment: int = 0,
    ) -> SessionHandle:
        handle = CelerySessionHandle(self, session_id, tenant_id, config, sink)
        handle.replay.begin_at(resume_at_s)
        handle.next_segment = first_segment
        await handle.open()
        return handle
