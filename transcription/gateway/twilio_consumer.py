"""Twilio Media Streams (``/ws/twilio``): a thin adapter over GatewaySession.

Twilio cannot send a header, so the socket is accepted bare and the session starts only with a
valid ``start``: its ``customParameters`` carry the credential (``api_key`` or a stream
``token``; checked and rate-limited as a handshake's are, never logged), and optionally a
``callback_url`` that gets each final, signed (final_hooks.py). The call's tracks become the
channels of one session (inbound = channel 0, outbound = channel 1), interleaved by timestamp
(protocols/twilio_tracks.py). Twilio is sent nothing back; an error closes the socket with a
1008 and the error's code and message as the close reason, which Twilio's debugger shows.
"""

import asyncio
import logging
from functools import partial

from django.conf import settings

from accounts import keys
from accounts.middleware import authenticate
from transcription import webhook_targets
from transcription.engine import TranscriptEvent
from transcription.gateway import db, final_hooks
from transcription.gateway.consumer import SessionConsumer, connection_refusal
from transcription.gateway.errors import CLOSE_IDLE, CLOSE_LIMIT, CLOSE_NORMAL, ProtocolError, standard_close_code
from transcription.gateway.events import Audio, Event, Failed, Keepalive, Start, Stop, Traits
from transcription.gateway.protocols import twilio
from transcription.gateway.protocols.twilio_tracks import TrackInterleaver
from transcription.gateway.session import GatewaySession
from transcription.models import Session

logger = logging.getLogger(__name__)

MAX_CLOSE_REASON_BYTES = 123  # RFC 6455's room for a close reason
MAX_AHEAD_S = 2.0  # how far one track may run ahead of the other before the other is filled with silence
MAX_GAP_S = 10.0  # the longest timestamp jump filled with silence (a longer one is filled this far)


class TwilioConsumer(SessionConsumer):
    tracks: TrackInterleaver | None = None
    poster: final_hooks.FinalPoster | None = None
    error: ProtocolError | None = None
    start_timer: asyncio.Task | None = None
    closed = False

    async def connect(self) -> None:
        await self.accept()
        if self.scope.get("rate_limited_for_s") is not None:
            refusal = connection_refusal(self.scope)
            assert refusal is not None
            return await self._refuse(refusal)
        self.start_timer = asyncio.create_task(self._start_deadline())

    async def _start_deadline(self) -> None:
        await asyncio.sleep(settings.ASR_START_TIMEOUT_S)
        if self.session is None:
            detail = f"No valid 'start' within {settings.ASR_START_TIMEOUT_S:g} s of connecting."
            await self._refuse(ProtocolError("start_timeout", detail, CLOSE_IDLE))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closed:
            return
        session = self.session
        try:
            if text_data is None:
                raise ProtocolError("bad_message", "Twilio Media Streams send JSON text messages only.")
            event = twilio.parse(text_data)
        except ProtocolError as error:
            return await (session.fail(error) if session is not None else self._refuse(error))
        if session is None:
            return await self._before_start(event)
        if isinstance(event, twilio.Media):
            assert self.tracks is not None
            if event.track not in self.tracks.tracks:
                message = f"Media on track {event.track!r}, which 'start.tracks' did not name."
                return await session.fail(ProtocolError("bad_message", message))
            await self._feed(session, self.tracks.add(event.track, event.timestamp_ms, event.payload))
        elif isinstance(event, twilio.StreamStop):
            if self.tracks is not None:
                await self._feed(session, self.tracks.flush())
            await session.handle(Stop())
        elif isinstance(event, twilio.StreamStart):
            await session.fail(ProtocolError("already_started", "The stream has already started."))
        else:
            await session.receive(Keepalive, is_text=True)  # connected, mark, dtmf: counted, nothing else

    async def _before_start(self, event: twilio.TwilioEvent) -> None:
        if isinstance(event, twilio.StreamStart):
            try:
                await self._begin(event)
            except ProtocolError as error:
                await self._refuse(error)
        elif isinstance(event, twilio.Media):
            await self._refuse(ProtocolError("bad_message", "'media' before 'start': the stream must start first."))
        elif isinstance(event, twilio.StreamStop):
            await self._close(CLOSE_NORMAL)

    async def _begin(self, start: twilio.StreamStart) -> None:
        """Authenticate the start, check what it asks for, then start the session."""
        if self.start_timer is not None:
            self.start_timer.cancel()
        principal = self.scope.get("principal")  # a credential in the handshake, from a proxy that adds one
        if principal is None:
            key, token = start.api_key, start.token
            if key is not None and keys.parse_key(key) is None:  # a stream token passed as api_key
                key, token = None, key
            if key is None and token is None:
                raise twilio.missing_credential()
            principal, blocked_for = await authenticate(self.scope, key=key, token=token)
            if blocked_for is not None:
                detail = f"Too many failed authentication attempts from this address; try again in {blocked_for} s."
                raise ProtocolError("rate_limited", detail, CLOSE_LIMIT)
            if principal is None:
                raise twilio.bad_credential()
        options = start.start_options()
        if start.callback_url is not None:
            try:
                await final_hooks.check_url(start.callback_url)
            except webhook_targets.TargetRefused as refusal:
                raise ProtocolError("invalid_start", f"callback_url: {refusal}") from None
        self.tracks = TrackInterleaver(
            start.tracks, sample_rate=twilio.SAMPLE_RATE, max_ahead_s=MAX_AHEAD_S, max_gap_s=MAX_GAP_S
        )
        traits = Traits(Session.Protocol.TWILIO, resumable=False, label=start.label)
        self.session = session = GatewaySession(principal, self, traits)
        await session.open()
        if session.running:
            await session.handle(Start(options))
        if session.live is not None:
            logger.info(
                "twilio stream started session_id=%s tenant_id=%s call_sid=%s tracks=%s",
                session.session_id,
                principal.tenant_id,
                start.call_sid,
                ",".join(start.tracks),
            )
            if start.callback_url is not None:
                secret = await db.webhook_secret(principal.tenant_id)
                fields = {"call_sid": start.call_sid, "stream_sid": start.stream_sid}
                context = final_hooks.CallContext(str(session.live.session_id), fields, start.tracks)
                self.poster = final_hooks.FinalPoster(start.callback_url, secret, context, principal.tenant_id)

    async def _feed(self, session: GatewaySession, data: bytes) -> None:
        """Interleaved μ-law to the session, in frames within the frame limit (a filled gap can be long)."""
        assert self.tracks is not None
        channels = len(self.tracks.tracks)
        step = settings.ASR_MAX_FRAME_BYTES - settings.ASR_MAX_FRAME_BYTES % channels
        for at in range(0, len(data), step):
            if not session.running:
                return
            await session.receive(partial(Audio, data[at : at + step]), is_text=False)

    async def _refuse(self, error: ProtocolError) -> None:
        """End a stream that has no session (nothing was started, nothing is stored)."""
        logger.info("twilio stream refused code=%s", error.code)
        self.error = error
        await self._close(error.close_code)

    async def _close(self, close_code: int) -> None:
        if self.closed:
            return
        self.closed = True
        if self.start_timer is not None and self.start_timer is not asyncio.current_task():
            self.start_timer.cancel()
        if self.poster is not None:
            self.poster.close()
        reason = f"{self.error.code}: {self.error.message}" if self.error else ""
        reason = reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
        await self.close(code=standard_close_code(close_code), reason=reason or None)

    async def disconnect(self, code: int) -> None:
        self.closed = True
        if self.start_timer is not None:
            self.start_timer.cancel()
        await super().disconnect(code)
        if self.poster is not None:
            self.poster.close()

    # --- the session's Transport ----------------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        if isinstance(event, Failed):
            self.error = event.error
        elif isinstance(event, TranscriptEvent) and event.is_final and self.poster is not None:
            self.poster.post(event)

    async def hang_up(self, close_code: int) -> None:
        await self._close(close_code)
