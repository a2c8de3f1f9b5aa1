"""Resumable sessions: resume tokens, and a new connection taking over a dropped session.

When a client vanishes mid-session its GatewaySession is parked: the engine keeps running for the
grace period, finals from the audio already sent are stored, to be re-sent. A client that comes back
in time with the session's resume token continues the same session on the same engine. A session
whose gateway process died is resumed from the database: a new engine from its last stored final.

A token is spent atomically (one conditional UPDATE), so of several concurrent resumes with the
same token exactly one wins; the others get ``resume_failed``.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.principal import Principal
from transcription.dispatch import get_dispatcher
from transcription.engine import SessionConfig
from transcription.gateway import db
from transcription.gateway.errors import ProtocolError, worker_refusal
from transcription.gateway.live import EventRelay, EventTarget, LiveSession
from transcription.gateway.registry import registry
from transcription.gateway.tokens import new_resume_token, token_hash
from transcription.runner.contract import WorkerRefusal


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


@dataclass(frozen=True)
class Takeover:
    """What a resuming connection continues with: the session, and the first final to re-send."""

    live: LiveSession
    resend_from: int
    new_token: str


async def take_over(
    principal: Principal, request: Any, config: SessionConfig, target: EventTarget, resumer: object
) -> Takeover:
    """Spend the token, then continue the session: on its engine here, or from its stored finals.

    ``target`` receives the engine's results from now on; ``resumer`` is the connection resuming.
    """
    ask = parse_resume_request(request)
    tenant_id = principal.tenant_id
    if ask.session_id not in registry.connected and ask.session_id not in registry.parked:
        await _until_resumable(tenant_id, ask.session_id)  # before the token is spent
    new_token, new_hash = new_resume_token()
    if not await db.session_claim_resume(tenant_id, ask.session_id, token_hash(ask.token), new_hash):
        raise resume_failed()
    # Only one connection gets here per token. Its client may have noticed the drop before we did.
    if (connected := registry.connected.get(ask.session_id)) is not None and connected is not resumer:
        await connected.yield_to_resume()
    parked = registry.claim(ask.session_id)
    if parked is not None and parked.principal.tenant_id == tenant_id:
        live = parked.hand_over(new_hash)
        resend_from = live.next_segment_at_park if ask.last_segment is None else ask.last_segment + 1
        return Takeover(live, resend_from, new_token)
    return await _reopen_from_database(principal, ask, config, target, new_token, new_hash)


async def _until_resumable(tenant_id: int, session_id: str) -> None:
    """Wait while the gateway serving the session may still be alive (its heartbeat is fresh; a
    killed one stops beating), within the start deadline; refuse once it cannot be resumed."""
    deadline = time.monotonic() + max(settings.ASR_START_TIMEOUT_S - 2.0, 0.0)
    while True:
        session, ask_again = await db.resumable_session(tenant_id, session_id)
        if session is not None:
            return
        if not ask_again or time.monotonic() >= deadline:
            raise resume_failed()
        await asyncio.sleep(0.5)


async def _reopen_from_database(
    principal: Principal,
    ask: ResumeRequest,
    config: SessionConfig,
    target: EventTarget,
    new_token: str,
    new_hash: str,
) -> Takeover:
    """A session no engine here holds (its gateway died): a new engine from its last stored final."""
    tenant_id = principal.tenant_id
    resume_at_s, first_segment, stored = await db.resume_point(tenant_id, ask.session_id)
    relay = EventRelay(target)
    try:
        handle = await get_dispatcher().open_session(
            session_id=ask.session_id,
            tenant_id=tenant_id,
            config=config,
            sink=relay.deliver,
            resume_at_s=resume_at_s,
            first_segment=first_segment,
        )
    except WorkerRefusal as refusal:
        raise worker_refusal(refusal) from None
    live = LiveSession(uuid.UUID(ask.session_id), principal, config, handle, relay, new_hash)
    live.segments, live.next_segment = stored, first_segment
    live.audio_bytes = round(resume_at_s * config.sample_rate) * config.bytes_per_frame
    resend_from = first_segment if ask.last_segment is None else ask.last_segment + 1
    return Takeover(live, resend_from, new_token)
