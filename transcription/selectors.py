"""Reads for sessions and segments, always scoped to one tenant."""

import uuid

from django.db.models import QuerySet

from transcription.models import Segment, Session


def session_list(*, tenant_id: int) -> QuerySet[Session]:
    return Session.objects.filter(tenant_id=tenant_id)


def session_get(*, tenant_id: int, session_id: uuid.UUID) -> Session:
    return Session.objects.get(tenant_id=tenant_id, pk=session_id)


def segment_list(*, tenant_id: int, session_id: uuid.UUID) -> QuerySet[Segment]:
    return Segment.objects.filter(session__tenant_id=tenant_id, session_id=session_id).order_by("index")
