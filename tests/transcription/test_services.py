"""The session services every caller shares: start, store a final, meter, close; each scoped to its tenant."""

from datetime import timedelta

import pytest
from django.utils import timezone

from transcription import selectors, services
from transcription.engine import TranscriptEvent
from transcription.models import Segment, Session

pytestmark = pytest.mark.django_db


def _start(tenant_id: int, **extra) -> Session:
    return services.session_start(
        tenant_id=tenant_id, api_key_id=None, language="en", engine="whisper", sample_rate=16000, **extra
    )


def _final(index: int, text: str = "hello there") -> TranscriptEvent:
    return TranscriptEvent(index, text, 1.0, 2.5, is_final=True, reason="endpoint", language="en")


def test_session_start_makes_a_live_stream_row_by_default(tenant_a):
    session = _start(tenant_a.tenant.pk)

    session.refresh_from_db()
    assert session.source == Session.Source.STREAM
    assert session.status == Session.Status.ACTIVE
    assert session.tenant_id == tenant_a.tenant.pk


def test_session_start_makes_a_file_row_when_asked(tenant_a):
    session = _start(tenant_a.tenant.pk, source=Session.Source.FILE)

    assert Session.objects.get(pk=session.pk).source == Session.Source.FILE


def test_storing_the_same_final_twice_keeps_one_segment(tenant_a):
    session = _start(tenant_a.tenant.pk)

    first = services.segment_store_final(tenant_id=tenant_a.tenant.pk, session_id=session.pk, event=_final(0))
    again = services.segment_store_final(
        tenant_id=tenant_a.tenant.pk, session_id=session.pk, event=_final(0, "a retried write")
    )

    assert again.pk == first.pk
    assert list(Segment.objects.filter(session=session).values_list("index", "text")) == [(0, "hello there")]


def test_a_final_for_another_tenants_session_is_not_stored(tenant_a, tenant_b):
    session = _start(tenant_a.tenant.pk)

    with pytest.raises(Session.DoesNotExist):
        services.segment_store_final(tenant_id=tenant_b.tenant.pk, session_id=session.pk, event=_final(0))

    assert not Segment.objects.filter(session=session).exists()


def test_session_finish_closes_once_with_its_reason_and_audio_seconds(tenant_a):
    session = _start(tenant_a.tenant.pk)

    closed = services.session_finish(
        tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=12.5
    )
    ended_at = closed.ended_at
    again = services.session_finish(
        tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason="disconnect", audio_seconds=99.0
    )

    again.refresh_from_db()
    assert again.status == Session.Status.CLOSED
    assert again.close_reason == "stop"
    assert again.audio_seconds == 12.5
    assert ended_at is not None and again.ended_at == ended_at


def test_another_tenant_cannot_close_or_meter_a_session(tenant_a, tenant_b):
    session = _start(tenant_a.tenant.pk)

    with pytest.raises(Session.DoesNotExist):
        services.session_finish(
            tenant_id=tenant_b.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=5.0
        )
    services.session_meter(tenant_id=tenant_b.tenant.pk, session_id=session.pk, audio_seconds=5.0)
    services.session_interrupt(tenant_id=tenant_b.tenant.pk, session_id=session.pk, audio_seconds=5.0)

    session.refresh_from_db()
    assert session.status == Session.Status.ACTIVE
    assert session.audio_seconds == 0.0
    assert session.ended_at is None


def test_session_meter_stops_counting_once_closed(tenant_a):
    session = _start(tenant_a.tenant.pk)
    services.session_meter(tenant_id=tenant_a.tenant.pk, session_id=session.pk, audio_seconds=3.0)
    services.session_finish(tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=4.0)

    services.session_meter(tenant_id=tenant_a.tenant.pk, session_id=session.pk, audio_seconds=50.0)

    session.refresh_from_db()
    assert session.audio_seconds == 4.0


@pytest.mark.django_db
def test_an_active_session_is_resumable_once_its_gateway_stopped_beating(tenant_a, tenant_b):
    """With several gateways (Celery mode) an ``active`` row may belong to a live one: a resume
    waits until the heartbeat is older than ``owner_silent_s`` (a killed gateway's soon is)."""
    session = services.session_start(
        tenant_id=tenant_a.tenant.pk, api_key_id=None, language="en", engine="t", sample_rate=16000
    )
    ask = {"tenant_id": tenant_a.tenant.pk, "session_id": str(session.pk), "grace_s": 30}
    assert selectors.session_resumable(**ask, owner_silent_s=7) == (None, True)  # ask again
    assert selectors.session_resumable(**ask, owner_silent_s=None) == (session, False)  # embedded
    Session.objects.filter(pk=session.pk).update(last_seen_at=timezone.now() - timedelta(seconds=8))
    assert selectors.session_resumable(**ask, owner_silent_s=7) == (session, False)
    other = {**ask, "tenant_id": tenant_b.tenant.pk}
    assert selectors.session_resumable(**other, owner_silent_s=7) == (None, False)
    services.session_finish(tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=1)
    assert selectors.session_resumable(**ask, owner_silent_s=None) == (None, False)


@pytest.mark.django_db
def test_a_closer_that_lost_the_session_to_a_resume_leaves_the_row_open(tenant_a):
    """A parked session expiring on one gateway while its client resumed on another, or a worker
    freeing the engine of a session a gateway still meters, must not close the row."""
    session = services.session_start(
        tenant_id=tenant_a.tenant.pk,
        api_key_id=None,
        language="en",
        engine="t",
        sample_rate=16000,
        resume_token_hash="old",
    )
    assert services.session_resume_claim(
        tenant_id=tenant_a.tenant.pk, session_id=session.pk, presented_token_hash="old", new_token_hash="new"
    )
    close = {"tenant_id": tenant_a.tenant.pk, "session_id": session.pk, "close_reason": "disconnect"}
    assert services.session_finish(**close, audio_seconds=3.0, resume_token_hash="old").status == "active"
    assert services.session_finish(**close, audio_seconds=3.0, unless_seen_within_s=10).status == "active"
    Session.objects.filter(pk=session.pk).update(last_seen_at=timezone.now() - timedelta(seconds=11))
    assert services.session_finish(**close, audio_seconds=3.0, unless_seen_within_s=10).status == "closed"
    again = services.session_start(
        tenant_id=tenant_a.tenant.pk,
        api_key_id=None,
        language="en",
        engine="t",
        sample_rate=16000,
        resume_token_hash="mine",
    )
    closed = services.session_finish(**{**close, "session_id": again.pk}, audio_seconds=2.0, resume_token_hash="mine")
    assert closed.status == "closed" and closed.audio_seconds == 2.0
