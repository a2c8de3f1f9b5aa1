"""OpenAI's Realtime API for transcription (``/v1/realtime?intent=transcription``): an adapter over GatewaySession.

The session starts with its first audio, so ``session.update`` may set it until then; a refusal
(quota, stream cap) then comes as an ``error`` event and the socket closes. Errors in a client
event that change nothing (a bad update, an empty commit) are answered and the session goes on,
as OpenAI's are. Auth: ``Authorization: Bearer <key>``, or in a browser the subprotocol
``openai-insecure-api-key.<key or client secret>`` (accounts/middleware.py).
"""

import copy
import json
import logging
from typing import Any

from django.conf import settings

from transcription.engine_settings import session_limits
from transcription.gateway.consumer import SessionConsumer, connection_refusal
from transcription.gateway.errors import ProtocolError, standard_close_code
from transcription.gateway.events import Audio, Event, Finalize, Keepalive, Traits
from transcription.gateway.protocols import openai_realtime as realtime
from transcription.gateway.session import GatewaySession
from transcription.models import Session

logger = logging.getLogger(__name__)

# An append carries a frame's worth of base64 audio, more than other text messages.
APPEND_OVERHEAD_BYTES = 512


def _max_event_bytes() -> int:
    return max(settings.ASR_MAX_TEXT_MESSAGE_BYTES, -(-settings.ASR_MAX_FRAME_BYTES // 3) * 4 + APPEND_OVERHEAD_BYTES)


class RealtimeConsumer(SessionConsumer):
    items: realtime.Items
    beta = False  # the client speaks the beta's transcription_session.* events

    async def connect(self) -> None:
        query = self.scope.get("query_string", b"").decode("latin-1")
        if (refusal := connection_refusal(self.scope)) is not None:
            kind = "rate_limit_error" if refusal.code == "rate_limited" else "invalid_request_error"
            body = realtime.error_event(refusal.message, code="invalid_api_key", kind=kind)
            return await self.refuse_handshake(429 if refusal.code == "rate_limited" else 401, body)
        if "intent=transcription" not in query.split("&"):
            message = "Only transcription sessions are served here: connect with ?intent=transcription."
            return await self.refuse_handshake(400, realtime.error_event(message, code="unsupported_intent"))
        offered = list(self.scope.get("subprotocols") or [])
        await self.accept(subprotocol="realtime" if "realtime" in offered else None)
        self.items = realtime.Items(realtime.TranscriptionSettings())
        traits = Traits(Session.Protocol.OPENAI_REALTIME, resumable=False, stable_partials=True)
        traits.implicit_start = self.items.settings.start_options(session_limits())
        self.session = GatewaySession(self.scope["principal"], self, traits)
        await self.session.open()
        if self.session.running:
            await self._send({"type": "session.created", "event_id": realtime.event_id(), "session": self._public()})

    def _public(self) -> dict[str, Any]:
        return {**self.items.settings.public(beta=self.beta), "id": f"sess_{self.items.session_key}"}

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session = self.session
        if session is None or not session.running:
            return
        if text_data is None:
            return await self._send(realtime.error_event("Send events as JSON text.", code="invalid_event"))
        try:
            data = realtime.parse(text_data, max_bytes=_max_event_bytes())
            kind = data["type"]
            if kind == "input_audio_buffer.append":
                audio = realtime.decode_audio(data)
                if audio:
                    return await session.receive(lambda: Audio(audio), is_text=False)
            await session.receive(Keepalive, is_text=True)  # counts against the message rate
            await self._handle(session, kind, data)
        except ProtocolError as error:  # an event that changes nothing: answered, the session goes on
            await self._send(realtime.error_event(error.message, code=error.code))

    async def _handle(self, session: GatewaySession, kind: str, data: dict[str, Any]) -> None:
        if kind in ("session.update", "transcription_session.update"):
            await self._update(session, data, beta=kind.startswith("transcription_session"))
        elif kind == "input_audio_buffer.commit":
            await self._commit(session, clear=False)
        elif kind == "input_audio_buffer.clear":
            await self._commit(session, clear=True)
        elif kind != "input_audio_buffer.append":
            message = f"Event {kind!r} is not supported in a transcription session."
            raise ProtocolError("unsupported_event", message)

    async def _update(self, session: GatewaySession, data: dict[str, Any], *, beta: bool) -> None:
        if session.started:
            raise ProtocolError("session_started", "The session is set by its first audio; update it before.")
        update = data.get("session")
        if not isinstance(update, dict):
            raise ProtocolError("invalid_value", "'session' must be an object.")
        if not beta and update.get("type", "transcription") != "transcription":
            raise ProtocolError("invalid_value", "Only transcription sessions are served here.")
        self.beta = beta
        settings = copy.deepcopy(self.items.settings)  # a refused update changes nothing
        settings.update(update, beta=beta)
        session.traits.implicit_start = settings.start_options(session_limits())
        self.items.settings = settings
        kind = "transcription_session.updated" if beta else "session.updated"
        await self._send({"type": kind, "event_id": realtime.event_id(), "session": self._public()})

    async def _commit(self, session: GatewaySession, *, clear: bool) -> None:
        live = session.live
        if live is None or not session.audio_since_finalize:
            if clear:
                return await self._send({"type": "input_audio_buffer.cleared", "event_id": realtime.event_id()})
            raise ProtocolError("input_audio_buffer_commit_empty", "The input audio buffer is empty.")
        segment = live.next_segment  # the open utterance's
        if clear:
            self.items.cleared.add(segment)  # heard and stored, but no longer this client's item
            await self._send({"type": "input_audio_buffer.cleared", "event_id": realtime.event_id()})
        else:
            self.items.committed.add(segment)
            await self._send(self.items.committed_event(segment))
        await session.handle(Finalize())

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message, ensure_ascii=False))

    # --- the session's Transport ----------------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        for message in self.items.render(event):
            await self._send(message)

    async def hang_up(self, close_code: int) -> None:
        await self.close(code=standard_close_code(close_code))
