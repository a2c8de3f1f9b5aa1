"""Each connection's watchdog: deadlines (start, idle, session length) and usage, despite failures.

The deadlines need no I/O and are checked every period whatever else is going on. Usage (write the
metered seconds, refresh the stream slot, re-read the tenant's standing for suspension, revocation
and quota) runs as its own task, one at a time: a database or Redis error is logged and retried at
the next flush, and a stalled call delays only the next flush, never a deadline. The loop, not the
flush task, ends a session that lost its standing (ending cancels the watchdog and its flush).
"""

import asyncio
import logging
import time
from typing import Protocol

from django.conf import settings

from accounts.principal import Principal
from transcription.gateway import db
from transcription.gateway.admission import get_admission
from transcription.gateway.errors import CLOSE_FORBIDDEN, CLOSE_IDLE, CLOSE_LIMIT, ProtocolError
from transcription.gateway.live import LiveSession
from transcription.models import Session

logger = logging.getLogger(__name__)
Reason = Session.CloseReason


class Watched(Protocol):
    principal: Principal
    live: LiveSession | None
    connected_at: float
    last_activity: float

    @property
    def started(self) -> bool: ...

    @property
    def running(self) -> bool: ...

    async def end(self, close_reason: str, *, utterance_reason: str, error: ProtocolError | None = None) -> None: ...


Overdue = tuple[str, str, ProtocolError]  # (close reason, utterance reason, error)


def overdue(session: Watched, now: float) -> Overdue | None:
    """The deadline the session has passed, if any."""
    if not session.started and now - session.connected_at >= settings.ASR_START_TIMEOUT_S:
        detail = f"No 'start' or audio within {settings.ASR_START_TIMEOUT_S:g} s of connecting."
        return Reason.IDLE_TIMEOUT, "disconnect", ProtocolError("start_timeout", detail, CLOSE_IDLE)
    if now - session.last_activity >= settings.ASR_IDLE_TIMEOUT_S:
        detail = f"No audio or keepalive for {settings.ASR_IDLE_TIMEOUT_S:g} s."
        return Reason.IDLE_TIMEOUT, "disconnect", ProtocolError("idle_timeout", detail, CLOSE_IDLE)
    if now - session.connected_at >= settings.ASR_MAX_SESSION_S:
        detail = f"Sessions are limited to {settings.ASR_MAX_SESSION_S:g} s."
        return Reason.SESSION_LIMIT, "max_length", ProtocolError("session_limit", detail, CLOSE_LIMIT)
    return None


async def watch(session: Watched) -> None:
    period = min(1.0, settings.ASR_IDLE_TIMEOUT_S / 4, settings.ASR_START_TIMEOUT_S / 4)
    last_flush = time.monotonic()
    flush: asyncio.Task | None = None
    try:
        while session.running:
            await asyncio.sleep(period)
            now = time.monotonic()
            if (due := overdue(session, now)) is None and flush is not None and flush.done() and not flush.cancelled():
                due = flush.result()
            if due is not None:
                if flush is not None:
                    flush.cancel()
                close_reason, utterance_reason, error = due
                await session.end(close_reason, utterance_reason=utterance_reason, error=error)
                return
            if session.started and now - last_flush >= settings.ASR_USAGE_FLUSH_S and (flush is None or flush.done()):
                last_flush = now
                flush = asyncio.create_task(flush_usage(session))
    finally:
        if flush is not None and not flush.done():
            flush.cancel()


async def flush_usage(session: Watched) -> Overdue | None:
    """Write metered seconds, keep the stream slot alive; say so if the session lost its standing."""
    live = session.live
    if live is None:
        return None
    tenant_id = session.principal.tenant_id
    try:
        await db.session_meter(tenant_id, live.session_id, live.metered_seconds)
    except Exception:
        logger.warning("metering failed, retrying at the next flush session_id=%s", live.session_id, exc_info=True)
    if live.slot_held:
        try:
            await get_admission().heartbeat(tenant_id, str(live.session_id))
        except Exception:
            logger.warning("slot heartbeat failed, retrying session_id=%s", live.session_id, exc_info=True)
    try:
        live.allowance = await db.tenant_allowance(tenant_id, live.session_id, session.principal.api_key_id)
    except Exception:
        logger.warning("allowance check failed, retrying session_id=%s", live.session_id, exc_info=True)
        return None
    if not live.allowance.active:  # suspended by staff, or the key revoked, mid-stream
        error = ProtocolError("forbidden", "This account or API key has been disabled.", CLOSE_FORBIDDEN)
        return Reason.FORBIDDEN, "disconnect", error
    return None
