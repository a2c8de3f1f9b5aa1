"""Deepgram's live WebSocket (``/v1/listen``): a thin adapter over GatewaySession.

The settings come in the query string, so a session with a declared ``encoding`` is admitted
during the handshake and a refusal is the HTTP status Deepgram answers with (401, 402, 429, 400).
Without one, Deepgram reads the format from the audio: the session then starts with the first
frame (a WAV header says the format). ``Finalize`` ends the utterance and the stream goes on.
"""

import json
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

from transcription.codecs import container_of, wire_frame_bytes
from transcription.engine_settings import session_limits
from transcription.gateway import intake
from transcription.gateway.consumer import SessionConsumer, connection_refusal
from transcription.gateway.errors import ProtocolError, internal_error, standard_close_code
from transcription.gateway.events import Audio, Command, Event, Failed, Keepalive, Start, Stop, Traits
from transcription.gateway.protocols import deepgram
from transcription.gateway.session import GatewaySession
from transcription.gateway.states import State
from transcription.models import Session

# Deepgram's clients send whole seconds of audio in one message; our frames are split to the limit.
MAX_CLOSE_REASON_BYTES = 123


class DeepgramConsumer(SessionConsumer):
    accepted = False
    refusal: ProtocolError | None = None
    renderer: deepgram.Renderer | None = None
    carry = b""  # bytes of a sample split across messages

    async def connect(self) -> None:
        if (refusal := connection_refusal(self.scope, scheme="Token")) is not None:
            return await self._refuse(refusal)
        limits = session_limits()
        try:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            request = deepgram.parse_query(query, limits)
        except ProtocolError as error:
            return await self._refuse(error)
        self.renderer = deepgram.Renderer(request, model=request.options.get("model", limits.default_model))
        traits = Traits(Session.Protocol.DEEPGRAM, resumable=False, implicit_start=request.options)
        self.session = session = GatewaySession(self.scope["principal"], self, traits)
        await session.open()
        if request.declared_format and session.state is State.WAITING:
            await session.handle(Start(request.options))
        if session.running:
            await self._accept()

    async def _accept(self) -> None:
        assert self.renderer is not None
        offered = [p.strip().lower() for p in self.scope.get("subprotocols") or []]
        subprotocol = offered[0] if offered and offered[0] in ("token", "bearer") else None
        await self.accept(subprotocol=subprotocol, headers=[(b"dg-request-id", self.renderer.request_id.encode())])
        self.accepted = True

    async def _refuse(self, error: ProtocolError) -> None:
        request_id = self.renderer.request_id if self.renderer else ""
        await self.refuse_handshake(deepgram.http_status(error), deepgram.refusal_body(error, request_id))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session = self.session
        if session is None:
            return
        if text_data is not None:
            return await self._text(session, text_data)
        if not bytes_data:  # Deepgram's old way to close a stream: an empty message
            return await session.handle(Stop())
        data = bytes_data
        if session.live is None:  # the first audio, maybe with a WAV header: it starts the session
            try:
                first = self._first_piece(data)
            except ProtocolError as error:
                return await session.fail(error)
            await self._feed(session, data[:first])
            data = data[first:]
        for piece in self._pieces(data):
            await self._feed(session, piece)
        if session.live is not None and self.renderer is not None:
            while (message := self.renderer.utterance_end(session.live.audio_seconds)) is not None:
                await self._send(message)

    async def _feed(self, session: GatewaySession, piece: bytes) -> None:
        if session.running and piece:
            assert self.renderer is not None
            self.renderer.audio(piece)
            await session.receive(partial(Audio, piece), is_text=False)

    def _first_piece(self, data: bytes) -> int:
        """How much of the first message starts the session: its WAV header, if any, and whole samples."""
        wav = intake.wav_prefix(data)
        if wav is not None:
            header_bytes, frame = wav.header.header_bytes, wire_frame_bytes(wav.header.encoding, wav.header.channels)
        else:
            assert self.session is not None
            channels = int(self.session.traits.implicit_start.get("channels", 1))
            header_bytes, frame = 0, 1 if container_of(data) else 2 * channels
        body = min(len(data), settings.ASR_MAX_FRAME_BYTES) - header_bytes
        return header_bytes + max(body - body % frame, 0)

    def _pieces(self, data: bytes) -> list[bytes]:
        """A message as frames within the frame limit, each a whole number of samples (the rest waits)."""
        live = self.session.live if self.session is not None else None
        if live is None:
            return []
        data = self.carry + data
        frame = wire_frame_bytes(live.config.encoding, live.config.channels)
        whole = len(data) - len(data) % frame
        self.carry = data[whole:]
        step = settings.ASR_MAX_FRAME_BYTES - settings.ASR_MAX_FRAME_BYTES % frame
        return [data[i : min(i + step, whole)] for i in range(0, whole, step)]

    async def _text(self, session: GatewaySession, text: str) -> None:
        reply: dict[str, Any] | None = None

        def parse() -> Command:
            nonlocal reply
            parsed = deepgram.parse_text(text, max_bytes=settings.ASR_MAX_TEXT_MESSAGE_BYTES)
            if isinstance(parsed, dict):
                reply = parsed
                return Keepalive()
            return parsed

        await session.receive(parse, is_text=True)
        if reply is not None and session.running:
            await self._send(reply)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message, ensure_ascii=False))

    # --- the session's Transport ----------------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        assert self.renderer is not None
        if isinstance(event, Failed):
            self.refusal = event.error
        messages = self.renderer.render(event)
        if self.accepted:
            for message in messages:
                await self._send(message)

    async def hang_up(self, close_code: int) -> None:
        if not self.accepted:
            return await self._refuse(self.refusal or internal_error())
        reason = (self.refusal.code if self.refusal else "").encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
        await self.close(code=standard_close_code(close_code), reason=reason or None)
