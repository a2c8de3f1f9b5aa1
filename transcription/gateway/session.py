"""GatewaySession: one connection's session as an explicit state machine (states.py).

It takes typed commands from a protocol adapter and sends typed events back (events.py); admits
against quota and stream cap; keeps every final (outbox.py) before sending it; and however the session ends,
finalizes and stores its open utterance. What outlives a connection is a LiveSession (live.py).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

from accounts.principal import Principal
from transcription.engine import SessionConfig, TranscriptEvent
from transcription.gateway import db, intake, limits, outbox, resume, watchdog
from transcription.gateway.errors import CLOSE_LIMIT, CLOSE_NORMAL, ProtocolError, engine_failure, internal_error
from transcription.gateway.events import (
    Audio,
    Closed,
    Command,
    Event,
    Failed,
    Finalize,
    Ready,
    ResumedElsewhere,
    Start,
    Stop,
    Traits,
    Transport,
)
from transcription.gateway.latency import FinalLatency
from transcription.gateway.link import ClientLink
from transcription.gateway.live import LiveSession
from transcription.gateway.registry import registry
from transcription.gateway.states import TRANSITIONS, State
from transcription.models import Session
from transcription.runner.contract import EngineFailure
from transcription.selectors import TenantAllowance

logger = logging.getLogger(__name__)
Reason = Session.CloseReason


class GatewaySession:
    def __init__(self, principal: Principal, transport: Transport, traits: Traits | None = None) -> None:
        self.principal = principal
        self.traits = traits or Traits()
        self.link = ClientLink(transport)
        self.state = State.WAITING
        self.live: LiveSession | None = None
        self.connected_at = self.last_activity = time.monotonic()
        self.first_frame = intake.FirstFrame()
        self.decoding: intake.Decoding | None = None  # the client's encoding to PCM, from the first audio
        self.audio_since_finalize = False
        self.unstarted_counted = False
        self.text_rate = limits.MessageRate.from_settings()
        self.pacer = limits.AudioPacer.from_settings()
        self.latency = FinalLatency()
        self.end_lock = asyncio.Lock()
        self.watchdog: asyncio.Task | None = None
        self.background: set[asyncio.Task] = set()

    def move(self, to: State) -> None:
        if to not in TRANSITIONS[self.state]:
            raise RuntimeError(f"session cannot go from {self.state.value} to {to.value}")
        self.state = to

    @property
    def started(self) -> bool:
        return self.state is not State.WAITING

    @property
    def running(self) -> bool:
        """Taking commands: waiting for start, or streaming."""
        return self.state in (State.WAITING, State.STREAMING)

    @property
    def session_id(self) -> str | None:
        return str(self.live.session_id) if self.live else None

    async def open(self) -> None:
        """Count the connection against the tenant's unstarted ones (refused past the cap), then watch it."""
        cap = settings.ASR_MAX_UNSTARTED_PER_TENANT
        if not registry.admit_unstarted(self.principal.tenant_id, cap):
            detail = f"At most {cap} connections of this account may wait to start at once."
            return await self.fail(ProtocolError("too_many_connections", detail, CLOSE_LIMIT))
        self.unstarted_counted = True
        self.watchdog = asyncio.create_task(watchdog.watch(self))

    async def disconnected(self) -> None:
        self.link.connected = False
        if self.state is State.STREAMING and self.traits.resumable and settings.ASR_RESUME_GRACE_S > 0:
            await self.park()  # the client may come back: keep the engine for the grace period
        else:
            await self.end(Reason.DISCONNECT, utterance_reason="disconnect")

    async def receive(self, parse: Callable[[], Command], *, is_text: bool) -> None:
        """A client frame: text counts against the connection's message rate before it is parsed."""
        try:
            if is_text:
                self.text_rate.take()
            command = parse()
        except ProtocolError as error:
            return await self.fail(error)
        await self.handle(command)

    async def handle(self, command: Command) -> None:
        """One client command. Protocol errors and failures end the session here, for every protocol."""
        if self.state not in (State.WAITING, State.STREAMING):
            return
        try:
            if isinstance(command, Audio):
                await self._audio(command.data)
                return
            self.last_activity = time.monotonic()
            if isinstance(command, Start):
                await self._start(command)
            elif isinstance(command, Finalize):
                await self._finalize()
            elif isinstance(command, Stop):
                if self.first_frame.declared_empty and not (self.live and self.live.audio_bytes):
                    raise ProtocolError("no_audio", "The WAV header declared no samples and no audio followed.")
                if self.decoding is not None and self.state is State.STREAMING:
                    await self._pcm(self.decoding.flush())
                await self.end(Reason.STOP, utterance_reason="stop")
            # Keepalive: only resets the idle timer, done above.
        except ProtocolError as error:
            await self.fail(error)
        except Exception:
            logger.exception("gateway failure session_id=%s", self.session_id)
            await self.end(Reason.INTERNAL_ERROR, utterance_reason="disconnect", error=internal_error())

    async def fail(self, error: ProtocolError) -> None:
        await self.end(Reason.BAD_REQUEST, utterance_reason="disconnect", error=error)

    async def _start(self, command: Start) -> None:
        if self.state is not State.WAITING:
            raise ProtocolError("already_started", "The session has already started; send 'start' only once, first.")
        # Read before the start is parsed: the tenant's session defaults come with its allowance.
        allowance = await db.tenant_allowance(self.principal.tenant_id, None)
        config = intake.session_config(command.options, allowance.defaults, self.traits.stable_partials)
        if command.resume is not None:
            await self._resume(command.resume, config)
        else:
            await self._open_new(config, allowance)

    async def _open_new(self, config: SessionConfig, allowance: TenantAllowance) -> None:
        self.live, token = await LiveSession.open_new(
            self.principal, config, self._on_engine_event, self.traits.protocol, allowance, self.traits.label
        )
        await self._begin_streaming(token)

    async def _resume(self, request: object, config: SessionConfig) -> None:
        takeover = await resume.take_over(self.principal, request, config, self._on_engine_event, self)
        live = self.live = takeover.live
        await live.relay.attach(self._on_engine_event)
        try:
            await live.admit()
        except ProtocolError:  # keep nothing half-attached: store what it heard and close it
            await live.finish(Reason.DISCONNECT, "disconnect")
            self.live = None
            raise
        await db.session_resumed(self.principal.tenant_id, live.session_id, live.resume_token_hash)
        resumed = {"resumed": True, "resume_from_s": round(live.audio_seconds, 3), "next_segment": live.next_segment}
        await self._begin_streaming(takeover.new_token, resumed)
        await outbox.get_outbox().settle(settings.ASR_OUTBOX_WAIT_S)
        for event in await db.finals_from(self.principal.tenant_id, live.session_id, takeover.resend_from):
            await self._deliver(event)
        logger.info("session resumed session_id=%s from_s=%.2f", live.session_id, live.audio_seconds)

    async def _begin_streaming(self, token: str, resumed: dict | None = None) -> None:
        assert self.live is not None
        self.move(State.STREAMING)
        self._count_started()
        registry.connect(str(self.live.session_id), self)
        live = self.live
        await self._deliver(Ready(str(live.session_id), live.config.public(), token, limits.public(), resumed))

    def _count_started(self) -> None:
        if self.unstarted_counted:
            self.unstarted_counted = False
            registry.started(self.principal.tenant_id)

    async def _audio(self, data: bytes) -> None:
        if len(data) > settings.ASR_MAX_FRAME_BYTES:
            raise ProtocolError(
                "frame_too_large", f"Audio frames are limited to {settings.ASR_MAX_FRAME_BYTES} bytes; got {len(data)}."
            )
        self.last_activity = time.monotonic()
        options, data = self.first_frame.take(data, self.live.config if self.live else None)
        if self.state is State.WAITING:  # audio first: a WAV header may say the format
            await self._start(Start({**self.traits.implicit_start, **(options or {})}))
        assert self.live is not None
        if self.decoding is None:
            self.decoding = intake.Decoding(self.live.config)
        await self._pcm(self.decoding.decode(data))

    async def _pcm(self, data: bytes) -> None:
        """The session's audio as PCM: within the quota, at the pace allowed, to the engine."""
        live = self.live
        assert live is not None and live.allowance is not None and live.credit is not None
        intake.check_whole_samples(data, live.config)
        if not data:
            return
        allowed = await limits.audio_allowed(live.allowance, live.credit, live.config, live.audio_bytes, len(data))
        if allowed:
            await self.pacer.take(allowed / live.config.bytes_per_second)  # a fast client waits here
            if self.state is not State.STREAMING:
                return
            live.audio_bytes += allowed
            self.audio_since_finalize = True
            self.latency.audio_received(live.audio_seconds)
            for piece in intake.engine_pieces(data[:allowed], live.config):
                await live.handle.push_audio(piece)
        if allowed < len(data):
            await self.end(Reason.QUOTA_EXCEEDED, utterance_reason="disconnect", error=limits.quota_exceeded())

    async def _finalize(self) -> None:
        """End the open utterance; with no audio since the last finalize there is none, and nothing to do."""
        if self.state is State.STREAMING and self.live is not None and self.audio_since_finalize:
            self.audio_since_finalize = False
            await self.live.handle.finalize()

    async def _on_engine_event(self, event: TranscriptEvent | EngineFailure) -> None:
        """Results from the engine, in order: store finals first, then tell the client."""
        if isinstance(event, EngineFailure):
            reason = Reason.BAD_REQUEST if event.code == "bad_audio" else Reason.INTERNAL_ERROR
            # Not awaited: ending waits for the engine task, which is the caller.
            self._spawn(self.end(reason, utterance_reason="disconnect", error=engine_failure(event)))
            return
        if self.live is None:
            return
        if event.is_final:
            await self.live.store_final(event)
        await self._deliver(event)
        if event.is_final:
            self.latency.final_sent(event.end)

    async def _deliver(self, event: Event) -> None:
        await self.link.deliver(event, session_id=self.session_id)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def end(self, close_reason: str, *, utterance_reason: str, error: ProtocolError | None = None) -> None:
        """End the session once, whoever asks first: finalize and store, then tell the client and close."""
        async with self.end_lock:
            if self.state not in (State.WAITING, State.STREAMING):
                return
            self.move(State.ENDING)
            if self.watchdog is not None and self.watchdog is not asyncio.current_task():
                self.watchdog.cancel()  # and with it any usage flush, so no heartbeat outlives the slot
            live = self.live  # kept while finishing: the last finals are stored and sent through it
            if live is not None:
                await live.finish(close_reason, utterance_reason)
                registry.disconnect(str(live.session_id), self)
            last: Failed | Closed = Failed(error) if error else live.closed() if live else Closed(None, 0.0, 0)
            await self._deliver(last)
            await self.link.hang_up(last.error.close_code if isinstance(last, Failed) else CLOSE_NORMAL)
            self.live = None
            self._count_started()
            self.move(State.CLOSED)

    async def park(self) -> None:
        """The client went away mid-session: keep the engine for the resume grace period."""
        async with self.end_lock:
            if self.state is not State.STREAMING or self.live is None:
                return
            self.move(State.PARKED)
            live = self.live
            live.next_segment_at_park = live.next_segment
            await live.relay.attach(self._store_while_parked)
            session_id = str(live.session_id)
            registry.disconnect(session_id, self)
            registry.park(session_id, self, settings.ASR_RESUME_GRACE_S)
        try:
            await db.session_interrupt(live.principal.tenant_id, live.session_id, live.metered_seconds)
        except Exception:
            logger.warning("marking the session interrupted failed session_id=%s", session_id, exc_info=True)

    async def _store_while_parked(self, event: TranscriptEvent | EngineFailure) -> None:
        """Engine results while nobody is connected: finals are stored (and re-sent on resume)."""
        if isinstance(event, TranscriptEvent) and event.is_final and self.live is not None:
            await self.live.store_final(event)

    async def yield_to_resume(self) -> None:
        """Another connection of the same client resumes this session: park it and let go of the socket."""
        await self.park()
        await self._deliver(ResumedElsewhere())
        await self.link.hang_up(CLOSE_NORMAL)

    def hand_over(self, new_token_hash: str) -> LiveSession:
        """A parked session goes to the connection resuming it; this one is done."""
        assert self.state is State.PARKED and self.live is not None
        live, self.live = self.live, None
        live.resume_token_hash = new_token_hash
        self.move(State.CLOSED)
        return live

    async def expire(self) -> None:
        """The resume grace period ran out: finalize and store the open utterance, close the session."""
        async with self.end_lock:
            if self.state is not State.PARKED or self.live is None:
                return
            self.move(State.ENDING)
            await self.live.finish(Reason.DISCONNECT, "disconnect")
            self.live = None
            self.move(State.CLOSED)
