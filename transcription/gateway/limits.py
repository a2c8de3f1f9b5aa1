"""Limits a session lives within: the tenant's quota and stream cap, and per-connection bounds.

The tenant's limits (admission at start, audio cut at the quota's exact sample) read the database,
the admission slots and the usage ledger (``transcription.quota``); the per-connection ones
(text-message rate) are local and cheap, so they run before a message is even parsed.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from django.conf import settings

from accounts.principal import Principal
from transcription.engine import SessionConfig
from transcription.gateway import db
from transcription.gateway.admission import get_admission
from transcription.gateway.errors import CLOSE_LIMIT, ProtocolError
from transcription.quota import StreamCredit
from transcription.selectors import TenantAllowance

logger = logging.getLogger(__name__)


async def admit(
    principal: Principal, session_id: uuid.UUID, credit: StreamCredit, allowance: TenantAllowance | None = None
) -> TenantAllowance:
    """Take a stream slot for the session; refuse it over the monthly quota or the stream cap (4029).

    ``allowance``: already read for this start (a new session has no usage of its own to leave out)."""
    if allowance is None:
        allowance = await db.tenant_allowance(principal.tenant_id, session_id)
    if not await _first_grant(allowance, credit):
        raise ProtocolError(
            "quota_exceeded", f"This month's audio quota ({allowance.quota_seconds:g} s) is used up.", CLOSE_LIMIT
        )
    if not await get_admission().acquire(principal.tenant_id, str(session_id), allowance.max_concurrent_streams):
        raise ProtocolError(
            "concurrency_limit",
            f"At most {allowance.max_concurrent_streams} concurrent streams are allowed for this account.",
            CLOSE_LIMIT,
        )
    return allowance


async def release(principal: Principal, session_id: uuid.UUID) -> None:
    await get_admission().release(principal.tenant_id, str(session_id))


async def _first_grant(allowance: TenantAllowance, credit: StreamCredit) -> bool:
    """Whether the tenant's month has any audio left, asked of the ledger (of the database without it)."""
    try:
        return await credit.prefetch(allowance.quota_seconds, _used_in_db(credit)) > 0
    except Exception:
        logger.warning("usage ledger unreachable, admitting on the database's figures", exc_info=True)
        return allowance.left_seconds > 0


async def audio_allowed(
    allowance: TenantAllowance, credit: StreamCredit, config: SessionConfig, audio_bytes: int, nbytes: int
) -> int:
    """How many of ``nbytes`` more fit in the tenant's quota (the rest is refused, to the sample).

    The seconds come out of the ledger every concurrent stream shares; should it be unreachable, the
    session falls back on the database's figures (its own audio against what others had metered).
    Seconds are metered ones (``SessionConfig.bytes_per_metered_second``): a multichannel session's
    audio counts once per channel.
    """
    audio_s = nbytes / config.bytes_per_metered_second
    try:
        granted_s = await credit.spend(audio_s, allowance.quota_seconds, _used_in_db(credit))
    except Exception:
        logger.warning("usage ledger unreachable, cutting on the database's figures", exc_info=True)
        left_bytes = _whole_frames(allowance.left_seconds, config, int) - audio_bytes
        return max(0, min(nbytes, left_bytes))
    if granted_s >= audio_s:
        return nbytes
    return min(nbytes, _whole_frames(granted_s, config, round))


def _whole_frames(metered_s: float, config: SessionConfig, to_int: Callable[[float], int]) -> int:
    """The bytes of whole sample frames that ``metered_s`` metered seconds allow."""
    return to_int(metered_s * config.sample_rate / config.metered_channels) * config.bytes_per_frame


def _used_in_db(credit: StreamCredit) -> Callable[[], Awaitable[float]]:
    key = credit.key

    async def used() -> float:
        return await db.usage_in_month(key.tenant_id, key.month_start)

    return used


def public() -> dict[str, float]:
    """The limits a client is told in ``ready``."""
    return {
        "max_frame_bytes": settings.ASR_MAX_FRAME_BYTES,
        "idle_timeout_s": settings.ASR_IDLE_TIMEOUT_S,
        "max_session_s": settings.ASR_MAX_SESSION_S,
        "resume_grace_s": settings.ASR_RESUME_GRACE_S,
    }


def quota_exceeded() -> ProtocolError:
    return ProtocolError("quota_exceeded", "This month's audio quota is used up.", CLOSE_LIMIT)


class AudioPacer:
    """Takes a connection's audio at most ``speed`` times real time after a head start of ``burst_s``.

    A client that sends faster waits here, inside the consumer, so the server stops reading its
    socket: an unpaced client costs the server what a few real-time streams cost, not all it has.
    """

    def __init__(self, speed: float, burst_s: float) -> None:
        self.speed, self.burst_s = speed, burst_s
        self.credit_s = burst_s
        self.updated = time.monotonic()

    async def take(self, audio_s: float) -> None:
        if self.speed <= 0:
            return
        now = time.monotonic()
        self.credit_s = min(self.burst_s, self.credit_s + (now - self.updated) * self.speed)
        self.updated = now
        self.credit_s -= audio_s
        if self.credit_s < 0:
            await asyncio.sleep(-self.credit_s / self.speed)

    @classmethod
    def from_settings(cls) -> "AudioPacer":
        return cls(settings.ASR_MAX_AUDIO_SPEED, settings.ASR_AUDIO_BURST_S)


class MessageRate:
    """A token bucket over one connection's text messages: ``rate_per_s`` sustained, ``burst`` at once."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s, self.burst = rate_per_s, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> None:
        """Count one message; raises ``rate_limited`` once the client is over its rate."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens < 1:
            raise ProtocolError(
                "rate_limited",
                f"Too many text messages: at most {self.rate_per_s:g} per second (bursts of {self.burst}).",
                CLOSE_LIMIT,
            )
        self.tokens -= 1

    @classmethod
    def from_settings(cls) -> "MessageRate":
        return cls(settings.ASR_TEXT_MESSAGES_PER_S, settings.ASR_TEXT_MESSAGE_BURST)
