"""The WebSocket consumer for protocol v1: a thin adapter over GatewaySession.

It decodes a frame, hands it to the session, and renders what the session sends. Authentication
happened in ``accounts.middleware`` (the principal is on the scope); everything else is the core's.
"""

import json
import logging
from functools import partial
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from transcription.gateway.errors import CLOSE_LIMIT, CLOSE_UNAUTHENTICATED, ProtocolError
from transcription.gateway.events import Event, Failed
from transcription.gateway.protocols import v1
from transcription.gateway.session import GatewaySession

logger = logging.getLogger(__name__)


def connection_refusal(scope: dict[str, Any], scheme: str = "Bearer") -> ProtocolError | None:
    """Why a connection is refused before any session: a rate-limited address, or no valid credential.

    ``scheme``: the Authorization scheme the protocol's clients know, named in the error.
    """
    if (blocked_for := scope.get("rate_limited_for_s")) is not None:
        detail = f"Too many failed authentication attempts from this address; try again in {blocked_for} s."
        return ProtocolError("rate_limited", detail, CLOSE_LIMIT, retry_after_s=blocked_for)
    if scope.get("principal") is None:
        detail = (
            "Invalid or revoked API key."
            if scope.get("presented_credentials")
            else f"Missing API key: send the header 'Authorization: {scheme} <key>'."
        )
        return ProtocolError("unauthenticated", detail, CLOSE_UNAUTHENTICATED)
    return None


class SessionConsumer(AsyncWebsocketConsumer):
    """What every protocol's consumer shares: a GatewaySession, and ASGI messages straight to it."""

    # No channel-layer channel of its own: nothing is ever sent to the consumer that way (results
    # go to the dispatch handle's channel). With channels_redis, one would cost a blocking Redis
    # read per WebSocket and leave a receive-buffer entry behind in the gateway after each session.
    channel_layer_alias = None
    session: GatewaySession | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Each ASGI message straight to its handler.

        Channels' own dispatch first closes stale database connections, in the one thread every
        database call of the process shares: each audio frame then waited behind any slow query,
        and a stalled database stopped every stream's socket being read. Our database calls close
        stale connections themselves (channels.db.database_sync_to_async), so none is needed here.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        if self.session is not None:
            await self.session.disconnected()

    async def refuse_handshake(self, status: int, body: dict[str, Any]) -> None:
        """Answer the handshake with an HTTP error and a JSON body (a plain 403 where the server cannot)."""
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            return await self.close()
        content = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await self.base_send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await self.base_send({"type": "websocket.http.response.body", "body": content})


class TranscribeConsumer(SessionConsumer):
    """Protocol v1 (``/ws/v1/transcribe``)."""

    async def connect(self) -> None:
        await self.accept()
        if (refusal := connection_refusal(self.scope)) is not None:
            await self.deliver(Failed(refusal))
            await self.hang_up(refusal.close_code)
            return
        self.session = GatewaySession(self.scope["principal"], transport=self)
        await self.session.open()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        if bytes_data is not None:
            await self.session.receive(partial(v1.parse_binary, bytes_data), is_text=False)
        elif text_data is not None:
            parse = partial(v1.parse_text, text_data, max_bytes=settings.ASR_MAX_TEXT_MESSAGE_BYTES)
            await self.session.receive(parse, is_text=True)

    # --- the session's Transport ----------------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        message, _ = v1.render(event)
        await self.send(text_data=json.dumps(message, ensure_ascii=False))

    async def hang_up(self, close_code: int) -> None:
        await self.close(code=close_code)
