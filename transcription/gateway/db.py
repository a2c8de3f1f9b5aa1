"""The gateway's ORM boundary: each call a thin async wrapper around one service or selector.

Finals and session closes are written by the outbox (``outbox.py``), which outlasts a database outage.
"""

import uuid
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from accounts import services as account_services
from transcription import selectors, services
from transcription.engine import SessionConfig, TranscriptEvent
from transcription.models import Session


@database_sync_to_async
def session_start(
    principal: Any,
    config: SessionConfig,
    engine: str,
    session_id: uuid.UUID,
    resume_token_hash: str,
    protocol: str,
    label: str = "",
) -> Session:
    return services.session_start(
        session_id=session_id,
        resume_token_hash=resume_token_hash,
        tenant_id=principal.tenant_id,
        api_key_id=principal.api_key_id,
        language=config.language,
        engine=engine,
        sample_rate=config.sample_rate,
        protocol=protocol,
        channels=config.metered_channels,
        encoding=config.encoding,
        label=label,
    )


@database_sync_to_async
def session_interrupt(tenant_id: int, session_id: uuid.UUID, audio_seconds: float) -> None:
    services.session_interrupt(tenant_id=tenant_id, session_id=session_id, audio_seconds=audio_seconds)


@database_sync_to_async
def session_claim_resume(tenant_id: int, session_id: str, presented_token_hash: str, new_token_hash: str) -> bool:
    return services.session_resume_claim(
        tenant_id=tenant_id,
        session_id=uuid.UUID(session_id),
        presented_token_hash=presented_token_hash,
        new_token_hash=new_token_hash,
    )


@database_sync_to_async
def session_resumed(tenant_id: int, session_id: uuid.UUID, resume_token_hash: str) -> None:
    services.session_resume(tenant_id=tenant_id, session_id=session_id, resume_token_hash=resume_token_hash)


@database_sync_to_async
def resumable_session(tenant_id: int, session_id: str) -> tuple[Session | None, bool]:
    # Another gateway may serve it (Celery mode) until its heartbeat, written with each usage flush,
    # is a flush and a margin old.
    owner_silent_s = None if settings.ASR_DISPATCH == "local" else settings.ASR_USAGE_FLUSH_S + 2.0
    return selectors.session_resumable(
        tenant_id=tenant_id,
        session_id=session_id,
        grace_s=settings.ASR_RESUME_GRACE_S,
        owner_silent_s=owner_silent_s,
    )


@database_sync_to_async
def resume_point(tenant_id: int, session_id: str) -> tuple[float, int, int]:
    return selectors.session_resume_point(tenant_id=tenant_id, session_id=session_id)


@database_sync_to_async
def finals_from(tenant_id: int, session_id: uuid.UUID, first_index: int) -> list[TranscriptEvent]:
    return [
        TranscriptEvent(s.index, s.text, s.start, s.end, is_final=True, reason=s.reason, channel=s.channel)
        for s in selectors.segment_list(tenant_id=tenant_id, session_id=session_id).filter(index__gte=first_index)
    ]


@database_sync_to_async
def tenant_allowance(
    tenant_id: int, session_id: uuid.UUID | None, api_key_id: int | None = None
) -> selectors.TenantAllowance:
    return selectors.tenant_allowance(tenant_id=tenant_id, excluding_session_id=session_id, api_key_id=api_key_id)


@database_sync_to_async
def session_meter(tenant_id: int, session_id: uuid.UUID, audio_seconds: float) -> None:
    services.session_meter(tenant_id=tenant_id, session_id=session_id, audio_seconds=audio_seconds)


@database_sync_to_async
def usage_in_month(tenant_id: int, month_start: datetime) -> float:
    return selectors.usage_seconds_this_month(tenant_id=tenant_id, now=month_start)


@database_sync_to_async
def webhook_secret(tenant_id: int) -> str:
    """The tenant's callback signing secret, made on first need (accounts.services)."""
    return account_services.webhook_secret_ensure(tenant_id=tenant_id)
