"""FunASR's WebSocket protocol (``/ws/funasr``): a thin adapter over GatewaySession.

FunASR's clients send no credentials: the key comes as ``?api_key=`` on this path only (never
logged: the server keeps no access log) or a stream token as ``?token=``.
"""

import json
from functools import partial

from django.conf import settings

from transcription.gateway.consumer import SessionConsumer, connection_refusal
from transcription.gateway.events import Audio, Command, Event, Failed, Keepalive, Start, Traits
from transcription.gateway.protocols import funasr
from transcription.gateway.session import GatewaySession
from transcription.models import Session


class FunasrConsumer(SessionConsumer):
    renderer: funasr.Renderer

    async def connect(self) -> None:
        await self.accept()
        self.renderer = funasr.Renderer()
        if (refusal := connection_refusal(self.scope, scheme="Bearer")) is not None:
            refusal.message += " FunASR clients may pass it as '?api_key=<key>'."
            await self.deliver(Failed(refusal))
            await self.hang_up(refusal.close_code)
            return
        traits = Traits(Session.Protocol.FUNASR, resumable=False, stable_partials=True)
        self.session = GatewaySession(self.scope["principal"], self, traits)
        await self.session.open()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session = self.session
        if session is None:
            return
        if bytes_data is not None:
            await session.receive(partial(Audio, bytes_data), is_text=False)
        elif text_data is not None:
            await session.receive(partial(self._parse, session, text_data), is_text=True)

    def _parse(self, session: GatewaySession, text: str) -> Command:
        command = funasr.parse_text(
            text,
            max_bytes=settings.ASR_MAX_TEXT_MESSAGE_BYTES,
            started=session.started or bool(session.traits.implicit_start),
            renderer=self.renderer,
        )
        if isinstance(command, Start) and self.renderer.wav_format == "wav":
            # A WAV file's header says its format: the session starts with the first audio.
            session.traits.implicit_start = command.options
            return Keepalive()
        return command

    # --- the session's Transport ----------------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        for message in self.renderer.render(event):
            await self.send(text_data=json.dumps(message, ensure_ascii=False))

    async def hang_up(self, close_code: int) -> None:
        await self.close(code=close_code)
