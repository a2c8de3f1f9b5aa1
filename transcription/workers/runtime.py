"""What an inference worker process holds: the models, the live sessions' engine state, a heartbeat.

Celery tasks (transcription/tasks.py) only hand commands to this runtime. Sessions run on one
asyncio loop thread through the same session loop as embedded mode (runner/loop.py), so a
session's audio is processed in order and partials are decoded only when it has caught up.
Results go back to the gateway's reply channel through the channel layer.

Redis may restart under a running worker: results are re-sent for ``ASR_REDIS_OUTAGE_S``, and the
heartbeat keeps trying, so the worker is back in the registry at its first beat after Redis is.
"""

import asyncio
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from asrplatform import process_state
from transcription.engine import TranscriptEvent
from transcription.runner import registry
from transcription.runner.contract import EngineFailure, OpenSession
from transcription.runner.loop import SessionLoop, SessionRunner

logger = logging.getLogger(__name__)

MAX_UNREPORTED_LAGS = 3000  # 5 min of 100 ms frames without a result (interim_results off, no speech)


@dataclass
class WorkerSession:
    handle: SessionLoop = field(init=False)  # opened once the session exists: its events need it
    reply_channel: str
    epoch: int
    tenant_id: int
    orphaned: bool = False  # the gateway stopped talking: store results here instead
    finishing: bool = False
    # Seconds from the gateway's send of each audio command to this loop taking it, not yet reported:
    # they ride on the next message to the gateway (asr_dispatch_lag_seconds).
    dispatch_lags: list[float] = field(default_factory=list)


@dataclass
class WorkerRuntime:
    worker_id: str
    queue: str
    capacity: int
    device: str
    sessions: dict[str, WorkerSession] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prefix = settings.ASR_REDIS_PREFIX
        self.redis = redis.Redis.from_url(settings.ASR_REGISTRY_URL, socket_timeout=5, socket_connect_timeout=3)
        self.loop = asyncio.new_event_loop()
        self.runner = SessionRunner.from_settings(max_backlog_s=1e9)
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.info = registry.WorkerInfo(
            id=self.worker_id,
            queue=self.queue,
            capacity=self.capacity,
            device=self.device,
            model=self.runner.engine_name,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=time.time(),
        )

    # --- lifecycle (worker main thread) -------------------------------------------------------

    def start(self) -> None:
        """Load the models, then run the session loop and the heartbeat in background threads."""
        self.runner.load()
        threading.Thread(target=self.loop.run_forever, name="asr-sessions", daemon=True).start()
        threading.Thread(target=self._heartbeat, name="asr-heartbeat", daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._janitor(), self.loop)

    def mark_ready(self) -> None:
        """Called once Celery consumes our queue: from now on gateways may pick this worker."""
        self.ready.set()
        self.beat()
        logger.info("worker ready worker_id=%s queue=%s", self.worker_id, self.queue)

    def stop(self) -> None:
        self.stopping.set()
        try:
            registry.remove_sync(self.redis, self.prefix, self.worker_id)
            self.redis.delete(*registry.queue_redis_keys(self.queue))
        except redis.RedisError:  # our key expires on its own
            logger.warning("could not deregister worker_id=%s", self.worker_id, exc_info=True)

    def submit(self, coroutine) -> None:
        """Run a command on the session loop; FIFO, so a session's commands keep their order."""
        asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    # --- heartbeat -----------------------------------------------------------------------------

    def beat(self) -> None:
        if not self.ready.is_set() or self.stopping.is_set():
            return
        now = time.time()
        handles = list(self.sessions.items())
        self.info.sessions = [sid for sid, _ in handles]
        self.info.lag_s = round(max((s.handle.lag_s(now) for _, s in handles), default=0.0), 3)
        registry.write_sync(self.redis, self.prefix, self.info, settings.ASR_WORKER_TTL_S)

    def _heartbeat(self) -> None:
        """Beat until the worker stops, whatever fails: a warning when beats start failing, one when they work again."""
        failing = False
        while not self.stopping.wait(settings.ASR_WORKER_HEARTBEAT_S):
            try:
                self.beat()
            except Exception:
                if not failing:
                    logger.warning("heartbeat failed, retrying worker_id=%s", self.worker_id, exc_info=True)
                failing = True
                continue
            if failing:
                logger.warning("heartbeat restored worker_id=%s", self.worker_id)
            failing = False

    async def _beat_now(self) -> None:
        """Show a change of sessions at once (the heartbeat would in a moment): best effort."""
        try:
            await asyncio.to_thread(self.beat)
        except Exception:
            logger.warning("heartbeat failed worker_id=%s", self.worker_id, exc_info=True)

    # --- commands (session loop) ---------------------------------------------------------------

    async def open(self, message: OpenSession, *, reply_channel: str, epoch: int) -> None:
        session_id = message.session_id
        previous = self.sessions.get(session_id)
        session = WorkerSession(reply_channel=reply_channel, epoch=epoch, tenant_id=message.tenant_id)  # type: ignore[arg-type]
        session.handle = self.runner.open(message, lambda event: self._deliver(session_id, session, event))
        # Before any await: the commands that follow the open (run as tasks of their own) must find it.
        self.sessions[session_id] = session
        if previous is not None:  # the gateway opened the session here again (failover, Redis lost data)
            previous.finishing = True
            await previous.handle.finish("disconnect")
        await self._beat_now()  # the gateway picking the next worker sees this session
        await self._send(session_id, session, {"type": "asr.opened", "worker": self.worker_id})
        logger.info("session opened worker_id=%s session_id=%s epoch=%s", self.worker_id, session_id, epoch)

    async def audio(self, *, session_id: str, epoch: int, data: bytes, sent_at: float) -> None:
        session = self._current(session_id, epoch)
        if session is not None:
            if len(session.dispatch_lags) < MAX_UNREPORTED_LAGS:
                session.dispatch_lags.append(round(time.time() - sent_at, 4))
            await session.handle.push_audio(data, sent_at=sent_at)

    async def finalize(self, *, session_id: str, epoch: int) -> None:
        session = self._current(session_id, epoch)
        if session is not None:
            session.handle.last_command_at = time.time()
            await session.handle.finalize()

    async def finish(self, *, session_id: str, epoch: int, reason: str) -> None:
        session = self._current(session_id, epoch)
        if session is None or session.finishing:
            return
        session.finishing = True
        await session.handle.finish(reason)
        self._forget(session_id, session)
        await self._send(session_id, session, {"type": "asr.finished"})
        await self._beat_now()
        logger.info("session closed worker_id=%s session_id=%s", self.worker_id, session_id)

    async def pong(self, *, reply_channel: str, seq: int, sent_at: float) -> None:
        await get_channel_layer().send(
            reply_channel, {"type": "asr.pong", "seq": seq, "sent_at": sent_at, "worker": self.worker_id}
        )

    def _forget(self, session_id: str, session: WorkerSession) -> None:
        """Drop a session that ended, unless it was opened here again meanwhile."""
        if self.sessions.get(session_id) is session:
            del self.sessions[session_id]

    def _current(self, session_id: str, epoch: int) -> WorkerSession | None:
        session = self.sessions.get(session_id)
        return session if session is not None and session.epoch == epoch else None

    async def _deliver(self, session_id: str, session: WorkerSession, event: TranscriptEvent | EngineFailure) -> None:
        if session.orphaned:
            if isinstance(event, TranscriptEvent) and event.is_final:
                await sync_to_async(_store_final)(session.tenant_id, session_id, event)
            return
        if isinstance(event, EngineFailure):
            await self._send(session_id, session, {"type": "asr.failure", "code": event.code, "message": event.message})
        else:
            await self._send(session_id, session, {"type": "asr.event", "event": event.to_message()})

    async def _send(self, session_id: str, session: WorkerSession, message: dict) -> None:
        """Send to the gateway, retrying while Redis is away: a session's results wait (in order) meanwhile.

        After ``ASR_REDIS_OUTAGE_S`` the result is dropped: the gateway has failed the session by then.
        """
        if session.dispatch_lags:
            message, session.dispatch_lags = {**message, "dispatch_lag_s": session.dispatch_lags}, []
        message = {**message, "epoch": session.epoch}
        outage = registry.RedisOutage(settings.ASR_REDIS_OUTAGE_S)
        while True:
            try:
                await get_channel_layer().send(session.reply_channel, message)
                return
            except Exception:
                logger.warning(
                    "sending a result failed session_id=%s type=%s attempt=%s",
                    session_id,
                    message["type"],
                    outage.failures + 1,
                    exc_info=outage.failures == 0,
                )
                if not await outage.wait():
                    logger.error("result dropped, Redis away session_id=%s type=%s", session_id, message["type"])
                    return

    async def _janitor(self) -> None:
        """Free sessions whose gateway vanished: finalize, store what they heard, drop the state."""
        while True:
            await asyncio.sleep(1.0)
            cutoff = time.time() - settings.ASR_WORKER_SESSION_IDLE_S
            for session_id, session in list(self.sessions.items()):
                if session.handle.last_command_at < cutoff and not session.finishing:
                    asyncio.create_task(self._expire(session_id, session))

    async def _expire(self, session_id: str, session: WorkerSession) -> None:
        logger.warning("session abandoned by its gateway worker_id=%s session_id=%s", self.worker_id, session_id)
        session.orphaned = session.finishing = True
        await session.handle.finish("disconnect")
        self._forget(session_id, session)
        engine = session.handle.engine
        audio_seconds = engine.audio_seconds * engine.config.metered_channels if engine else 0.0  # as metered
        silent_s = time.time() - session.handle.last_command_at
        await sync_to_async(_close_orphan)(session.tenant_id, session_id, audio_seconds, silent_s)
        await self._beat_now()


def _store_final(tenant_id: int, session_id: str, event: TranscriptEvent) -> None:
    from transcription import services

    services.segment_store_final(tenant_id=tenant_id, session_id=session_id, event=event)


def _close_orphan(tenant_id: int, session_id: str, audio_seconds: float, silent_s: float) -> None:
    """Close the row, unless a gateway metered it well after this worker last heard of it: the
    session was resumed elsewhere (its dead gateway's last flush came at most a flush after that)."""
    from transcription import services

    services.session_finish(
        tenant_id=tenant_id,
        session_id=session_id,
        close_reason="disconnect",
        audio_seconds=audio_seconds,
        unless_seen_within_s=max(0.0, silent_s - 2 * settings.ASR_USAGE_FLUSH_S),
    )


RUNTIME_KEY = ("worker.runtime",)


def set_runtime(runtime: WorkerRuntime) -> None:
    process_state.put(RUNTIME_KEY, runtime)


def current_runtime() -> WorkerRuntime:
    return process_state.get(RUNTIME_KEY, _not_a_worker)


def _not_a_worker() -> WorkerRuntime:
    raise RuntimeError("Not an inference worker: start workers with `manage.py asr_worker`.")
