"""The session's line to its client, which may be gone: sends after a hang-up are dropped, not raised."""

import logging

from transcription import metrics
from transcription.gateway.events import Event, Failed, Transport

logger = logging.getLogger(__name__)


class ClientLink:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.connected = True

    async def deliver(self, event: Event, *, session_id: str | None = None) -> None:
        if not self.connected:
            return
        if isinstance(event, Failed):
            logger.info("session error session_id=%s code=%s", session_id, event.error.code)
            metrics.count_error(event.error.code)
        try:
            await self.transport.deliver(event)
        except Exception:  # a socket that went away mid-send: the disconnect follows
            logger.warning("could not send to the client session_id=%s", session_id, exc_info=True)

    async def hang_up(self, close_code: int, *, session_id: str | None = None) -> None:
        if not self.connected:
            return
        self.connected = False
        try:
            await self.transport.hang_up(close_code)
        except Exception:
            logger.warning("could not close the socket session_id=%s", session_id, exc_info=True)
