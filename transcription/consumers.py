"""The WebSocket gateway, protocol v1 (see README): authenticate, validate, dispatch, persist.

The consumer never runs a model. Every final is stored before it is sent, and whatever way a
session ends (stop, error, idle, a vanished client), its open utterance is finalized and stored.
"""

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from transcription import gateway_db as db
from transcription import metrics, protocol, resume, selectors
from transcription.dispatch import EngineFailure, SessionHandle, get_dispatcher
from transcription.engine import ConfigError, SessionConfig, SessionLimits, TranscriptEvent, parse_start
from transcription.engine.audio import AudioFormatError, looks_like_wav, parse_wav_header
from transcription.engine_settings import session_limits
from transcription.gateway_limits import LimitsMixin
from transcription.gateway_resume import ResumeMixin
from transcription.models import Session
from transcription.protocol import ProtocolError
from transcription.workers.registry import WorkerRefusal

logger = logging.getLogger(__name__)

ENGINE_FAILURE_CLOSE_CODES = {"bad_audio": protocol.CLOSE_BAD_REQUEST, "no_capacity": protocol.CLOSE_LIMIT}


class TranscribeConsumer(LimitsMixin, ResumeMixin, AsyncWebsocketConsumer):
    # No channel-layer channel of its own: nothing is ever sent to the consumer that way (results
    # go to the dispatch handle's channel). With channels_redis, one would cost a blocking Redis
    # read per WebSocket and leave a receive-buffer entry behind in the gateway after each session.
    channel_layer_alias = None
    # State: "waiting" for start → "streaming" → "ending" (finishing the engine) → "closed".
    state = "waiting"

    async def connect(self) -> None:
        await self.accept()
        self.connected = True
        self.principal = self.scope.get("principal")
        self.session_id: uuid.UUID | None = None
        self.config: SessionConfig | None = None
        self.handle: SessionHandle | None = None
        self.audio_bytes = 0
        self.segments = 0
        self.next_segment = 0
        self.resume_token_hash = ""
        self.allowance: selectors.TenantAllowance | None = None
        self.slot_held = False
        # (session time at the end of a received frame, when it arrived): for final latency.
        self.arrivals: deque[tuple[float, float]] = deque(maxlen=2000)
        self.last_flush = time.monotonic()
        self.first_audio_checked = False
        self.wav_declared_empty = False
        self.end_lock = asyncio.Lock()
        self.connected_at = self.last_activity = time.monotonic()
        self.watchdog: asyncio.Task | None = None
        if (blocked_for := self.scope.get("rate_limited_for_s")) is not None:
            detail = f"Too many failed authentication attempts from this address; try again in {blocked_for} s."
            await self._send_error_and_close(
                ProtocolError("rate_limited", detail, protocol.CLOSE_LIMIT, retry_after_s=blocked_for)
            )
            self.state = "closed"
            return
        if self.principal is None:
            detail = (
                "Invalid or revoked API key."
                if self.scope.get("presented_credentials")
                else ("Missing API key: send the header 'Authorization: Bearer <key>'.")
            )
            await self._send_error_and_close(ProtocolError("unauthenticated", detail, protocol.CLOSE_UNAUTHENTICATED))
            self.state = "closed"
            return
        self.watchdog = asyncio.create_task(self._watch())

    async def disconnect(self, code: int) -> None:
        self.connected = False
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.state == "streaming" and settings.ASR_RESUME_GRACE_S > 0:
            await self._park()  # the client may come back: keep the engine for the grace period
        else:
            await self._end(Session.CloseReason.DISCONNECT, utterance_reason="disconnect")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.state in ("ending", "closed"):
            return
        try:
            if bytes_data is not None:
                await self._on_audio(bytes_data)
            elif text_data is not None:
                await self._on_text(text_data)
        except ProtocolError as error:
            await self._end(Session.CloseReason.BAD_REQUEST, utterance_reason="disconnect", error=error)
        except Exception:
            logger.exception("gateway failure session_id=%s", self.session_id)
            await self._end(
                Session.CloseReason.INTERNAL_ERROR,
                utterance_reason="disconnect",
                error=ProtocolError("internal_error", "Internal server error.", protocol.CLOSE_INTERNAL),
            )

    # --- client messages --------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        message = protocol.parse_text_message(text, max_bytes=settings.ASR_MAX_TEXT_MESSAGE_BYTES)
        self.last_activity = time.monotonic()
        if message.type == "start":
            if self.state != "waiting":
                raise ProtocolError(
                    "already_started", "The session has already started; send 'start' only once, first."
                )
            fields = dict(message.fields)
            resume_request = fields.pop("resume", None)
            try:
                config = parse_start(fields, self._limits())
            except ConfigError as error:
                raise ProtocolError("invalid_start", str(error)) from None
            if resume_request is not None:
                await self._resume(resume_request, config)
            else:
                await self._start(config)
        elif message.type == "finalize":
            if self.handle is not None:
                await self.handle.finalize()
        elif message.type == "stop":
            if self.wav_declared_empty and self.audio_bytes == 0:
                raise ProtocolError("no_audio", "The WAV header declared no samples and no audio followed.")
            await self._end(Session.CloseReason.STOP, utterance_reason="stop")
        # keepalive: only resets the idle timer, done above.

    async def _on_audio(self, data: bytes) -> None:
        if len(data) > settings.ASR_MAX_FRAME_BYTES:
            raise ProtocolError(
                "frame_too_large", f"Audio frames are limited to {settings.ASR_MAX_FRAME_BYTES} bytes; got {len(data)}."
            )
        self.last_activity = time.monotonic()
        if not self.first_audio_checked:
            self.first_audio_checked = True
            data = await self._strip_wav_header(data)
        if self.state == "waiting":
            await self._start(parse_start({}, self._limits()))
        assert self.config is not None and self.handle is not None
        if len(data) % self.config.bytes_per_frame:
            raise ProtocolError(
                "bad_audio",
                f"Audio frame of {len(data)} bytes is not a whole number of {self.config.encoding} samples "
                f"({self.config.bytes_per_frame} bytes each, {self.config.channels} channel(s)).",
            )
        allowed = self._audio_allowed(len(data))
        if allowed:
            self.audio_bytes += allowed
            self.arrivals.append((self.audio_bytes / self.config.bytes_per_second, time.monotonic()))
            await self.handle.push_audio(data[:allowed])
        if allowed < len(data):
            await self._end(
                Session.CloseReason.QUOTA_EXCEEDED,
                utterance_reason="disconnect",
                error=ProtocolError("quota_exceeded", "This month's audio quota is used up.", protocol.CLOSE_LIMIT),
            )

    async def _strip_wav_header(self, data: bytes) -> bytes:
        """Accept a client that sends a WAV file's bytes: check its header against the session."""
        if not looks_like_wav(data):
            return data
        try:
            header = parse_wav_header(data)
        except AudioFormatError as error:
            raise ProtocolError("bad_audio", f"Invalid WAV header: {error}") from None
        if self.state == "waiting":
            fields = {"sample_rate": header.sample_rate, "encoding": header.encoding, "channels": header.channels}
            await self._start(parse_start(fields, self._limits()))
        else:
            assert self.config is not None
            declared = (self.config.sample_rate, self.config.encoding, self.config.channels)
            if (header.sample_rate, header.encoding, header.channels) != declared:
                raise ProtocolError(
                    "bad_audio",
                    f"WAV header says {header.sample_rate} Hz {header.encoding} x{header.channels} "
                    f"but 'start' declared {declared[0]} Hz {declared[1]} x{declared[2]}.",
                )
        self.wav_declared_empty = header.data_bytes == 0
        return data[header.header_bytes :]

    # --- session lifecycle ------------------------------------------------------------------

    def _limits(self) -> SessionLimits:
        return session_limits()

    async def _start(self, config: SessionConfig) -> None:
        dispatcher = get_dispatcher()
        session_id = uuid.uuid4()
        await self._admit(session_id)
        try:
            handle = await dispatcher.open_session(
                session_id=str(session_id), tenant_id=self.principal.tenant_id, config=config, sink=self._on_event
            )
        except WorkerRefusal as refusal:
            await self._release_slot(session_id)
            raise protocol.worker_refusal(refusal) from None
        token, self.resume_token_hash = resume.new_resume_token()
        # The row exists only for sessions a worker took, so a refused start leaves nothing behind.
        session = await db.session_start(
            self.principal, config, dispatcher.engine_name, session_id, self.resume_token_hash
        )
        self.session_id, self.config, self.state, self.handle = session.id, config, "streaming", handle
        resume.live_consumers[str(session.id)] = self
        await self._send_ready(token)

    async def _send_ready(self, resume_token: str, **extra: Any) -> None:
        assert self.config is not None
        await self._send_json(
            {
                "type": "ready",
                "session_id": str(self.session_id),
                "config": self.config.public(),
                "resume_token": resume_token,
                **extra,
                "limits": {
                    "max_frame_bytes": settings.ASR_MAX_FRAME_BYTES,
                    "idle_timeout_s": settings.ASR_IDLE_TIMEOUT_S,
                    "max_session_s": settings.ASR_MAX_SESSION_S,
                    "resume_grace_s": settings.ASR_RESUME_GRACE_S,
                },
            }
        )

    async def _on_event(self, event: TranscriptEvent | EngineFailure) -> None:
        """Results from the engine, in order: store finals first, then tell the client."""
        if isinstance(event, EngineFailure):
            close_code = ENGINE_FAILURE_CLOSE_CODES.get(event.code, protocol.CLOSE_INTERNAL)
            reason = (
                Session.CloseReason.BAD_REQUEST if event.code == "bad_audio" else Session.CloseReason.INTERNAL_ERROR
            )
            # Not awaited: ending waits for the engine task, which is the caller.
            asyncio.create_task(
                self._end(
                    reason, utterance_reason="disconnect", error=ProtocolError(event.code, event.message, close_code)
                )
            )
            return
        if event.is_final:
            await db.segment_store(self.principal.tenant_id, self.session_id, event)
            self.segments += 1
            self.next_segment = event.segment + 1
        await self._send_json(event.to_message())
        if event.is_final:
            self._observe_final_latency(event.end)

    async def _end(self, close_reason: str, *, utterance_reason: str, error: ProtocolError | None = None) -> None:
        """End the session once, whoever asks first: finalize and store, then tell and close."""
        async with self.end_lock:
            if self.state in ("ending", "closed"):
                return
            self.state = "ending"
            if self.handle is not None:
                await self.handle.finish(utterance_reason)
            audio_seconds = self.audio_bytes / self.config.bytes_per_second if self.config else 0.0
            if self.session_id is not None:
                await db.session_finish(self.principal.tenant_id, self.session_id, close_reason, audio_seconds)
            if error is not None:
                await self._send_error_and_close(error)
            elif self.connected:
                await self._send_json(
                    {
                        "type": "closed",
                        "session_id": str(self.session_id) if self.session_id else None,
                        "audio_seconds": round(audio_seconds, 3),
                        "segments": self.segments,
                    }
                )
                await self.close(code=protocol.CLOSE_NORMAL)
            self.state = "closed"
            await self._release_slot(self.session_id)
            if self.session_id is not None and resume.live_consumers.get(str(self.session_id)) is self:
                del resume.live_consumers[str(self.session_id)]
            if self.watchdog is not None and self.watchdog is not asyncio.current_task():
                self.watchdog.cancel()

    async def _watch(self) -> None:
        """Close sessions that went quiet or ran past the maximum length."""
        period = min(1.0, settings.ASR_IDLE_TIMEOUT_S / 4)
        while self.state not in ("ending", "closed"):
            await asyncio.sleep(period)
            now = time.monotonic()
            if self.state == "streaming" and now - self.last_flush >= settings.ASR_USAGE_FLUSH_S:
                self.last_flush = now
                await self._flush_usage()
            if now - self.last_activity >= settings.ASR_IDLE_TIMEOUT_S:
                error = ProtocolError(
                    "idle_timeout", f"No audio or keepalive for {settings.ASR_IDLE_TIMEOUT_S:g} s.", protocol.CLOSE_IDLE
                )
                await self._end(Session.CloseReason.IDLE_TIMEOUT, utterance_reason="disconnect", error=error)
            elif now - self.connected_at >= settings.ASR_MAX_SESSION_S:
                error = ProtocolError(
                    "session_limit", f"Sessions are limited to {settings.ASR_MAX_SESSION_S:g} s.", protocol.CLOSE_LIMIT
                )
                await self._end(Session.CloseReason.SESSION_LIMIT, utterance_reason="max_length", error=error)

    def _observe_final_latency(self, end_s: float) -> None:
        """Time from the arrival of the audio that ends an utterance to its final being sent."""
        while self.arrivals and self.arrivals[0][0] < end_s - 1e-3:
            self.arrivals.popleft()
        if self.arrivals:
            metrics.observe_final_latency(time.monotonic() - self.arrivals[0][1])

    async def _send_json(self, message: dict[str, Any]) -> None:
        if self.connected:
            await self.send(text_data=json.dumps(message, ensure_ascii=False))

    async def _send_error_and_close(self, error: ProtocolError) -> None:
        if not self.connected:
            return
        logger.info("session error session_id=%s code=%s", self.session_id, error.code)
        metrics.count_error(error.code)
        await self._send_json(protocol.error_message(error.code, error.message, **error.fields))
        await self.close(code=error.close_code)
