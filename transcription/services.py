"""Writes for sessions and segments. Each takes the tenant id and filters on it; only the sweep of lost
sessions, a system job, spans tenants."""

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from accounts import services as account_services
from transcription import selectors
from transcription.engine.config import ConfigError, SessionDefaults, parse_start
from transcription.engine_settings import session_limits
from transcription.models import Segment, Session

if TYPE_CHECKING:
    from transcription.engine import TranscriptEvent

logger = logging.getLogger(__name__)


@transaction.atomic
def session_start(
    *,
    tenant_id: int,
    api_key_id: int | None,
    language: str,
    engine: str,
    sample_rate: int,
    session_id: uuid.UUID | None = None,
    resume_token_hash: str = "",
    source: str = Session.Source.STREAM,
    protocol: str = Session.Protocol.V1,
    channels: int = 1,
    encoding: str = "",
    label: str = "",
) -> Session:
    """The one way a session row is created: live streams (gateway) and file jobs (``source="file"``).

    ``channels``: how many are transcribed each on its own (multichannel), 1 when mixed down;
    ``encoding``: the audio as the client sent it (start's ``encoding``; the browser's Opus or PCM);
    ``label``: the client system's name for it (a Twilio call SID)."""
    session = Session.objects.create(
        id=session_id or uuid.uuid4(),
        resume_token_hash=resume_token_hash,
        tenant_id=tenant_id,
        api_key_id=api_key_id,
        source=source,
        protocol=protocol,
        language=language,
        engine=engine,
        sample_rate=sample_rate,
        channels=channels,
        encoding=encoding,
        label=label[:100],
    )
    logger.info("session started session_id=%s tenant_id=%s source=%s", session.id, tenant_id, source)
    return session


@transaction.atomic
def segment_store(
    *,
    tenant_id: int,
    session_id: uuid.UUID | str,
    index: int,
    start: float,
    end: float,
    text: str,
    reason: str,
    language: str = "",
    words: list[dict] | None = None,
    confidence: float | None = None,
    channel: int | None = None,
) -> Segment:
    """Store a final; storing the same (session, index) again returns the row already there."""
    session = Session.objects.get(pk=session_id, tenant_id=tenant_id)
    defaults = {"start": start, "end": end, "text": text, "reason": reason, "language": language, "words": words}
    defaults |= {"confidence": confidence, "channel": channel}
    segment, _ = Segment.objects.get_or_create(session=session, index=index, defaults=defaults)
    return segment


def segment_store_final(*, tenant_id: int, session_id: uuid.UUID | str, event: "TranscriptEvent") -> Segment:
    """The one way a final is kept: the gateway (connected or parked), worker orphans and file jobs.

    Idempotent on (session, index); the caller's next segment index is ``segment.index + 1``.
    """
    return segment_store(
        tenant_id=tenant_id,
        session_id=session_id,
        index=event.segment,
        start=event.start,
        end=event.end,
        text=event.text,
        reason=event.reason or "",
        language=event.language or "",
        words=None if event.words is None else [w.to_message() for w in event.words],
        confidence=event.confidence,
        channel=event.channel,
    )


@transaction.atomic
def session_finish(
    *,
    tenant_id: int,
    session_id: uuid.UUID | str,
    close_reason: str,
    audio_seconds: float,
    resume_token_hash: str | None = None,
    unless_seen_within_s: float | None = None,
) -> Session:
    """The one way a session is closed (gateway, worker orphans, file jobs); closing it again changes nothing.

    A closer that may have lost the session to a resume elsewhere says so, and the row stays open
    for its new owner: a gateway by its resume token (``resume_token_hash``: a resume replaced it),
    a worker by the heartbeat (``unless_seen_within_s``: another gateway meters it).
    """
    session = Session.objects.select_for_update().get(pk=session_id, tenant_id=tenant_id)
    taken_over = resume_token_hash is not None and session.resume_token_hash != resume_token_hash
    if unless_seen_within_s is not None:
        taken_over |= session.last_seen_at >= timezone.now() - timedelta(seconds=unless_seen_within_s)
    # "lost" is the sweeper's guess; the owner's own close, arriving later (its outbox written out
    # after a database outage), is the truth: reason and metered audio.
    guessed_lost = session.close_reason == Session.CloseReason.LOST and close_reason != Session.CloseReason.LOST
    if taken_over and session.status != Session.Status.CLOSED:
        logger.info("session resumed elsewhere, left open session_id=%s tenant_id=%s", session_id, tenant_id)
    elif session.status != Session.Status.CLOSED or guessed_lost:
        session.status = Session.Status.CLOSED
        session.close_reason = close_reason
        session.audio_seconds = audio_seconds
        session.ended_at = timezone.now()
        session.save(update_fields=["status", "close_reason", "audio_seconds", "ended_at"])
        logger.info(
            "session closed session_id=%s tenant_id=%s reason=%s audio_s=%.2f",
            session_id,
            tenant_id,
            close_reason,
            audio_seconds,
        )
    return session


def session_interrupt(*, tenant_id: int, session_id: uuid.UUID, audio_seconds: float) -> None:
    """The client dropped; the session may still be resumed within the grace period."""
    now = timezone.now()
    Session.objects.filter(pk=session_id, tenant_id=tenant_id, status=Session.Status.ACTIVE).update(
        status=Session.Status.INTERRUPTED, interrupted_at=now, last_seen_at=now, audio_seconds=audio_seconds
    )


def session_resume_claim(
    *, tenant_id: int, session_id: uuid.UUID, presented_token_hash: str, new_token_hash: str
) -> bool:
    """Spend a resume token: of any number of concurrent callers presenting it, exactly one gets True.

    One conditional UPDATE, so the check and the spending cannot be split by another gateway process.
    """
    claimed = (
        Session.objects.filter(pk=session_id, tenant_id=tenant_id, resume_token_hash=presented_token_hash)
        .exclude(status=Session.Status.CLOSED)
        .exclude(resume_token_hash="")
        .update(resume_token_hash=new_token_hash, last_seen_at=timezone.now())
    )
    return claimed == 1


def session_resume(*, tenant_id: int, session_id: uuid.UUID, resume_token_hash: str) -> None:
    """Active again, with a new resume token (the previous one is spent)."""
    Session.objects.filter(pk=session_id, tenant_id=tenant_id).exclude(status=Session.Status.CLOSED).update(
        status=Session.Status.ACTIVE,
        interrupted_at=None,
        resume_token_hash=resume_token_hash,
        last_seen_at=timezone.now(),
    )


def session_meter(*, tenant_id: int, session_id: uuid.UUID, audio_seconds: float) -> None:
    """Record a live session's metered audio so far (usage survives a gateway crash); also its
    heartbeat: a session whose owner stops metering is found by session_sweep_stale."""
    Session.objects.filter(pk=session_id, tenant_id=tenant_id).exclude(status=Session.Status.CLOSED).update(
        audio_seconds=audio_seconds, last_seen_at=timezone.now()
    )


def session_sweep_stale(
    *, older_than_s: float, now: datetime | None = None, only: Mapping[uuid.UUID, datetime] | None = None
) -> int:
    """Close, as ``lost``, the live streams no process looks after any more; returns how many.

    Cross-tenant on purpose: a system job (the gateways' sweeper, ``manage.py asr_sweep``), never
    reachable from a tenant's request. A stream whose gateway was killed stays ``active`` (or
    ``interrupted`` once past the resume grace) with its heartbeat ``last_seen_at`` going stale;
    ``older_than_s`` must exceed what a live owner may take to refresh it (transcription.sweeper
    says how long). Its metered audio seconds are kept, and a final a worker stores later is still
    kept (segment_store takes finals into closed sessions). File sessions end with their job.
    Each row is re-checked under its lock, so several sweepers at once close it once. With ``only``,
    just the rows listed there whose heartbeat has not moved since (transcription.sweeper looks twice).
    """
    stale = selectors.sessions_stale(older_than_s=older_than_s, now=now)
    closed = 0
    for session_id in list(stale.values_list("pk", flat=True)):
        if only is not None and session_id not in only:
            continue
        with transaction.atomic():
            session = stale.select_for_update(skip_locked=True).filter(pk=session_id).first()
            if session is None:  # refreshed, closed, or being closed by another sweeper meanwhile
                continue
            if only is not None and session.last_seen_at != only[session_id]:
                continue  # its owner wrote meanwhile: alive after all (a database outage ended)
            logger.warning(
                "session lost, closing it session_id=%s tenant_id=%s last_seen_at=%s",
                session.pk,
                session.tenant_id,
                session.last_seen_at.isoformat(),
            )
            session_finish(
                tenant_id=session.tenant_id,
                session_id=session.pk,
                close_reason=Session.CloseReason.LOST,
                audio_seconds=session.audio_seconds,
            )
            closed += 1
    return closed


class DefaultsRefused(ValueError):
    """Session defaults this server cannot honour; the text says why, naming what is available."""


def tenant_session_defaults_update(
    *, tenant_id: int, model: str, language: str, endpointing_ms: int | None, final_model: str
) -> SessionDefaults:
    """Check the owner's defaults as a ``start`` naming them is checked (an installed model, a
    language it or the language's model speaks, endpointing within bounds, a final model that can
    decode that session's finals), then store them. "" or None: no default of the tenant's for that field."""
    asked = {"model": model, "language": language, "endpointing_ms": endpointing_ms}
    start = {k: v for k, v in asked.items() if v not in ("", None)}
    limits = session_limits()
    try:
        parse_start(start, limits)
    except ConfigError as error:
        raise DefaultsRefused(str(error)) from None
    if final_model:
        try:
            parse_start({**start, "final_model": final_model}, limits)
        except ConfigError as error:
            raise DefaultsRefused(f"Final model: {error}") from None
    account_services.tenant_session_defaults_set(
        tenant_id=tenant_id, model=model, language=language, endpointing_ms=endpointing_ms, final_model=final_model
    )
    return SessionDefaults(model, language, endpointing_ms, final_model)
