"""The session loop: every session's engine runs on the decode scheduler's threads of one process.

Each session has one asyncio task that feeds its engine in arrival order, so the event loop never
runs a model and one session's audio is never processed by two threads at once. The scheduler
(scheduler.py) runs audio intake and finals before speculative decodes before partials; a partial
is decoded only when the session has caught up with its audio (the newest audio is all that matters).

Embedded mode (``dispatch/local``) and every inference worker (``workers/runtime``) run sessions
through this same loop: a :class:`SessionRunner` per process, a :class:`SessionLoop` per session.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

from transcription.engine import SessionConfig
from transcription.engine.audio import AudioFormatError
from transcription.engine.models import ModelSettings, load_models, model_registry
from transcription.engine.multichannel import EngineSession, open_engine_session
from transcription.runner.contract import EngineFailure, EventSink, OpenSession, SessionHandle
from transcription.runner.scheduler import PARTIAL, SPECULATIVE, STALE, URGENT, DecodeScheduler

logger = logging.getLogger(__name__)

MAX_BATCH_BYTES = 256 * 1024  # audio handed to the engine in one call when a backlog builds up
# A partial is stale, and handed back to take this much newer audio in first, when that much waits
# for its session: a frame or two behind is not worth another trip through the queue.
STALE_PARTIAL_S = 0.3


@dataclass(frozen=True)
class _Audio:
    data: bytes


@dataclass(frozen=True)
class _Finalize:
    pass


@dataclass(frozen=True)
class _Finish:
    reason: str


_Command = _Audio | _Finalize | _Finish


class SessionLoop(SessionHandle):
    """One session: its commands in arrival order, and the task that feeds them to its engine.

    The commands are a deque plus an event rather than an ``asyncio.Queue``: the loop must see
    what comes next (audio to join into one batch, or a command that ends the batch) without
    taking it, which a queue only allows through its private ``_queue``.
    """

    def __init__(self, runner: "SessionRunner", message: OpenSession, sink: EventSink) -> None:
        self.runner = runner
        self.resume_at_s, self.first_segment = message.resume_at_s, message.first_segment
        self.session_id = message.session_id
        self.config = message.config
        self.sink = sink
        self.commands: deque[_Command] = deque()
        self.arrived = asyncio.Event()  # set by every append; cleared by the loop before it waits
        self.queued_bytes = 0
        self.enqueued_at: deque[float] = deque()  # wall time each queued audio frame was sent
        self.last_command_at = time.time()
        self.max_queued_bytes = int(runner.max_backlog_s * self.config.bytes_per_second)
        self.drained = asyncio.Event()
        self.drained.set()
        self.done = asyncio.Event()
        self.engine: EngineSession | None = None
        self.task = asyncio.create_task(self._run(), name=f"asr-session-{self.session_id}")

    async def push_audio(self, data: bytes, *, sent_at: float | None = None) -> None:
        while self.queued_bytes >= self.max_queued_bytes and not self.done.is_set():
            self.drained.clear()
            await self.drained.wait()
        if self.done.is_set():
            return
        self.queued_bytes += len(data)
        self.last_command_at = time.time()
        self.enqueued_at.append(sent_at or self.last_command_at)
        self._put(_Audio(data))

    def lag_s(self, now: float) -> float:
        """How far behind real time this session's processing is: age of its oldest queued audio."""
        return now - self.enqueued_at[0] if self.enqueued_at else 0.0

    async def finalize(self) -> None:
        self._put(_Finalize())

    async def finish(self, reason: str) -> None:
        if not self.done.is_set():
            self._put(_Finish(reason))
        await asyncio.shield(self.done.wait())

    def _put(self, command: _Command) -> None:
        self.commands.append(command)
        self.arrived.set()

    async def _next_command(self, timeout: float | None) -> _Command:
        """The next command, waiting up to ``timeout`` seconds for one (TimeoutError after that)."""
        while not self.commands:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=timeout)
        return self.commands.popleft()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.runner.scheduler.run(partial(fn, *args), kind=URGENT)

    async def _decode_partial(self, engine: EngineSession) -> None:
        """A partial (or a speculative final) at its class's priority; if much fresher audio arrived
        while it waited (``STALE_PARTIAL_S``), take that audio in first and ask again with the same
        place in line.

        It is handed back at most once. Audio arrives every 100 ms or so; on a busy server a partial
        that waits longer than that would find newer audio on every try and never run. The retry
        decodes what was taken in, and audio that arrives meanwhile goes into the next partial.
        """
        scheduler = self.runner.scheduler
        kind = self._decode_class(engine)
        ticket = scheduler.new_ticket(
            None if kind == SPECULATIVE else engine.last_partial_at + engine.partial_interval_s
        )
        still_wanted: Callable[[], bool] | None = self._fresh_enough_for_partial
        while True:
            event = await scheduler.run(engine.decode_partial, kind=kind, ticket=ticket, still_wanted=still_wanted)
            if event is not STALE:
                break
            still_wanted = None
            if not await self._take_in_queued_audio(engine):
                return  # finalize or finish is next: the session loop handles it
            if not engine.partial_due(time.monotonic()):
                return  # the utterance ended with that audio: its final took the partial's place
            kind = self._decode_class(engine)
        if event is not None:
            await self.sink(event)

    @staticmethod
    def _decode_class(engine: EngineSession) -> int:
        """SPECULATIVE for a speculative final, and for an utterance's first partial: until it comes
        the user has seen nothing of what they are saying, the longest wait for news there is."""
        return SPECULATIVE if engine.speculation_due() or not engine.partial_sent else PARTIAL

    def _fresh_enough_for_partial(self) -> bool:
        """Asked on the decode thread: whether less than ``STALE_PARTIAL_S`` of audio waits behind a partial."""
        return self.queued_bytes < STALE_PARTIAL_S * self.config.bytes_per_second

    async def _take_in_queued_audio(self, engine: EngineSession) -> bool:
        """One engine call on the audio queued now (joined by _batch); False if a command is next instead."""
        if not self.commands:
            return True
        head = self.commands[0]
        if not isinstance(head, _Audio):
            return False
        self.commands.popleft()
        for event in await self._call(engine.accept_audio, self._batch(head.data)):
            await self.sink(event)
        return True

    async def _run(self) -> None:
        try:
            self.engine = await self._call(
                partial(
                    self.runner.new_engine_session,
                    self.config,
                    resume_at_s=self.resume_at_s,
                    first_segment=self.first_segment,
                )
            )
            self.engine.thrifty_when = self.runner.scheduler.congested
            await self._serve(self.engine)
        except AudioFormatError as exc:
            await self.sink(EngineFailure(code="bad_audio", message=str(exc)))
        except Exception:  # the engine must never take the gateway down with it
            logger.exception("engine failure session_id=%s", self.session_id)
            await self.sink(EngineFailure(code="internal_error", message="The recognizer failed on this session."))
        finally:
            self.done.set()
            self.drained.set()

    async def _serve(self, engine: EngineSession) -> None:
        while True:
            now = time.monotonic()
            engine.partial_interval_s = self.runner.scheduler.partial_interval(self.config.partial_interval_s)
            # A due partial goes next even while audio keeps arriving: the audio queued now is taken in
            # first, in one call. Waiting for an empty queue instead starved partials on a busy server,
            # where a new frame is queued every time an intake returns (at 10 streams some sessions
            # saw no partial for 2 s).
            if engine.partial_due(now) and await self._take_in_queued_audio(engine):
                if engine.partial_due(time.monotonic()):
                    await self._decode_partial(engine)
                continue
            try:
                # Wake for new audio, or when the next partial falls due.
                command = await self._next_command(timeout=engine.seconds_until_partial(now))
            except TimeoutError:
                continue
            if isinstance(command, _Audio):
                events = await self._call(engine.accept_audio, self._batch(command.data))
            elif isinstance(command, _Finalize):
                events = await self._call(engine.finalize, "client")
            else:
                events = await self._call(engine.finalize, command.reason)
            for event in events:
                await self.sink(event)
            if isinstance(command, _Finish):
                return

    def _batch(self, first: bytes) -> bytes:
        """Join queued audio behind ``first`` so a backlog is processed in few engine calls."""
        parts, size = [first], len(first)
        while size < MAX_BATCH_BYTES and self.commands:
            head = self.commands[0]
            if not isinstance(head, _Audio):
                break
            self.commands.popleft()
            parts.append(head.data)
            size += len(head.data)
        for _ in parts:
            if self.enqueued_at:
                self.enqueued_at.popleft()
        self.queued_bytes -= size
        if self.queued_bytes < self.max_queued_bytes:
            self.drained.set()
        return b"".join(parts)


class SessionRunner:
    """What every session of one process shares: the models and the decode scheduler."""

    def __init__(
        self,
        *,
        models: ModelSettings,
        workers: int,
        max_backlog_s: float,
        intake_threads: int = 1,
        thrifty_finals: bool = True,
    ) -> None:
        self.model_settings = models
        self.max_backlog_s = max_backlog_s
        self.scheduler = DecodeScheduler(workers, intake_threads=intake_threads, thrifty=thrifty_finals)
        self.models_state = "not preloaded"  # /readyz: "loading" until preload() has them in memory

    @classmethod
    def from_settings(cls, *, max_backlog_s: float | None = None) -> "SessionRunner":
        """Built from Django settings; ``max_backlog_s`` defaults to ASR_MAX_BACKLOG_S."""
        from django.conf import settings

        from transcription.engine_settings import model_settings_from_django

        return cls(
            models=model_settings_from_django(),
            workers=settings.ASR_LOCAL_WORKERS,
            max_backlog_s=settings.ASR_MAX_BACKLOG_S if max_backlog_s is None else max_backlog_s,
            intake_threads=settings.ASR_INTAKE_THREADS,
            thrifty_finals=settings.ASR_THRIFTY_FINALS,
        )

    @property
    def engine_name(self) -> str:
        return f"{self.model_settings.default_model}+fsmn-vad"

    def languages(self) -> tuple[str, ...]:
        return model_registry(self.model_settings).default_info().languages

    def preload(self, extra_models: tuple[str, ...] = ()) -> None:
        """Load the models in the background so the first session does not wait for them.

        ``extra_models``: others every session may use (the deployment's final model). Until they
        are in memory ``models_state`` is "loading" and ``/readyz`` says 503, so a load balancer
        does not send the first streams to a process that would fall seconds behind on them.
        """
        self.models_state = "loading"
        future = self.scheduler.submit(partial(self._load_for_serving, extra_models))
        future.add_done_callback(self._preloaded)

    def _load_for_serving(self, extra_models: tuple[str, ...]) -> None:
        models = load_models(self.model_settings)
        for name in extra_models:
            models.recognizer_for(name)

    def _preloaded(self, future: "Future[None]") -> None:
        error = future.exception()
        if error is None:
            self.models_state = "ok"
        else:
            logger.error("preloading the models failed: %s", error)
            self.models_state = "failed"

    def load(self) -> None:
        """Load the models now, on this thread."""
        load_models(self.model_settings)

    def new_engine_session(
        self, config: SessionConfig, *, resume_at_s: float = 0.0, first_segment: int = 0
    ) -> EngineSession:
        """A mixed-down session's engine, or a multichannel one's (one stream per channel)."""
        models = load_models(self.model_settings)
        return open_engine_session(config, models, resume_at_s=resume_at_s, first_segment=first_segment)

    def open(self, message: OpenSession, sink: EventSink) -> SessionLoop:
        """Start a session's loop (on the running event loop); its engine is built on an engine thread."""
        return SessionLoop(self, message, sink)
