"""Resumable sessions: what a gateway process keeps of a session whose client dropped.

When a client vanishes mid-session, its engine keeps running for a grace period ("parked"):
finals from the audio it already sent are stored and kept to re-send. A client that comes back in
time with the session's resume token continues the same session on the same engine. Once the
grace period ends, the open utterance is finalized and stored and the session closes. A session
whose gateway process died can still be resumed from the database (see consumers).
"""

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from transcription.dispatch import EngineFailure, SessionHandle
from transcription.engine import SessionConfig, TranscriptEvent
from transcription.protocol import ProtocolError

logger = logging.getLogger(__name__)

# Sessions with a connected client in this process, by session id (for a takeover when a client
# reconnects before this server noticed its old connection was gone).
live_consumers: dict[str, Any] = {}


def new_resume_token() -> tuple[str, str]:
    """A fresh resume token and the hash stored for it (the token itself is only sent to the client)."""
    token = secrets.token_urlsafe(24)
    return token, hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return bool(stored_hash) and hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), stored_hash)


@dataclass(frozen=True)
class ResumeRequest:
    session_id: str
    token: str
    last_segment: int | None


def parse_resume_request(value: Any) -> ResumeRequest:
    """``{"session_id", "resume_token", "last_segment"?}`` from ``start.resume``, checked."""
    if not isinstance(value, dict) or set(value) - {"session_id", "resume_token", "last_segment"}:
        raise ProtocolError("invalid_start", "'resume' must be an object with session_id, resume_token, last_segment.")
    session_id, token, last = value.get("session_id"), value.get("resume_token"), value.get("last_segment")
    try:
        session_id = str(uuid.UUID(str(session_id)))
    except ValueError:
        raise ProtocolError("invalid_start", "'resume.session_id' is not a session id.") from None
    if not isinstance(token, str) or not 0 < len(token) <= 200:
        raise ProtocolError("invalid_start", "'resume.resume_token' must be the token from 'ready'.")
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < -1):
        raise ProtocolError("invalid_start", "'resume.last_segment' must be a segment number.")
    return ResumeRequest(session_id, token, last)


def resume_failed() -> ProtocolError:
    return ProtocolError(
        "resume_failed", "This session cannot be resumed (unknown, closed or past its grace period); start a new one."
    )


@dataclass
class ParkedSession:
    session_id: str
    tenant_id: int
    api_key_id: int | None
    resume_token_hash: str
    config: SessionConfig
    handle: SessionHandle
    audio_bytes: int
    segments: int
    next_segment: int
    store_final: Callable[[TranscriptEvent], Awaitable[None]]
    expire: Callable[["ParkedSession"], Awaitable[None]]
    timer: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.next_segment_at_park = self.next_segment

    async def sink(self, event: TranscriptEvent | EngineFailure) -> None:
        """Engine results while nobody is connected: store finals (they are re-sent on resume)."""
        if isinstance(event, TranscriptEvent) and event.is_final:
            async with self.lock:
                await self.store_final(event)
                self.segments += 1
                self.next_segment = event.segment + 1


class ParkingLot:
    """The parked sessions of this process, each with a timer that closes it after the grace period."""

    def __init__(self) -> None:
        self.parked: dict[str, ParkedSession] = {}

    def park(self, parked: ParkedSession, grace_s: float) -> None:
        parked.handle.sink = parked.sink  # type: ignore[attr-defined]
        self.parked[parked.session_id] = parked
        parked.timer = asyncio.create_task(self._expire_after(parked, grace_s))
        logger.info("session parked session_id=%s grace_s=%s", parked.session_id, grace_s)

    def claim(self, session_id: str) -> ParkedSession | None:
        """Take a parked session out of the lot (its timer stops); None when it is not here."""
        parked = self.parked.pop(session_id, None)
        if parked is not None and parked.timer is not None:
            parked.timer.cancel()
        return parked

    def peek(self, session_id: str) -> ParkedSession | None:
        return self.parked.get(session_id)

    async def _expire_after(self, parked: ParkedSession, grace_s: float) -> None:
        await asyncio.sleep(grace_s)
        if self.parked.get(parked.session_id) is parked:
            del self.parked[parked.session_id]
            logger.info("resume grace over, closing session_id=%s", parked.session_id)
            await parked.expire(parked)


parking_lot = ParkingLot()
