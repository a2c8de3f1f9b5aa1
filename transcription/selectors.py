"""Reads for sessions and segments, always scoped to one tenant."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, Max, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from transcription.engine.config import NO_DEFAULTS, SessionConfig, SessionDefaults, parse_start
from transcription.models import FileTranscription, Segment, Session

if TYPE_CHECKING:
    from accounts.models import Tenant


def session_list(*, tenant_id: int) -> QuerySet[Session]:
    return Session.objects.filter(tenant_id=tenant_id)


def file_job_list(*, tenant_id: int) -> QuerySet[FileTranscription]:
    return FileTranscription.objects.filter(tenant_id=tenant_id).order_by("-created_at", "id")


def session_get(*, tenant_id: int, session_id: uuid.UUID) -> Session:
    return Session.objects.get(tenant_id=tenant_id, pk=session_id)


def segment_list(*, tenant_id: int, session_id: uuid.UUID) -> QuerySet[Segment]:
    return Segment.objects.filter(session__tenant_id=tenant_id, session_id=session_id).order_by("index")


def session_resumable(
    *, tenant_id: int, session_id: str, grace_s: float, owner_silent_s: float | None
) -> tuple[Session | None, bool]:
    """A session of this tenant that a reconnecting client may continue, and whether to ask again.

    Interrupted sessions qualify within the grace period. An ``active`` one qualifies once the
    process serving it is gone: its heartbeat (``last_seen_at``) is older than ``owner_silent_s``
    (None: no other process can be serving it, as in embedded mode). Until then the answer is
    (None, True): the owner may still notice the drop and park it, or stop beating.
    """
    session = Session.objects.filter(tenant_id=tenant_id, pk=session_id).first()
    if session is None or session.status == Session.Status.CLOSED:
        return None, False
    if session.status == Session.Status.INTERRUPTED:
        fresh = session.interrupted_at and session.interrupted_at >= timezone.now() - timedelta(seconds=grace_s)
        return (session if fresh else None), False
    if owner_silent_s is None or session.last_seen_at <= timezone.now() - timedelta(seconds=owner_silent_s):
        return session, False
    return None, True


def session_resume_point(*, tenant_id: int, session_id: str) -> tuple[float, int, int]:
    """Where a session continues from its stored finals: (time in s, next segment, finals stored)."""
    agg = Segment.objects.filter(session__tenant_id=tenant_id, session_id=session_id).aggregate(
        end=Max("end"), last=Max("index"), count=Count("id")
    )
    return (agg["end"] or 0.0, (agg["last"] + 1) if agg["last"] is not None else 0, agg["count"])


@dataclass(frozen=True)
class SessionSummary:
    """A session with the figures the transcript list shows."""

    session: Session
    segments: int
    words: int


def session_summarize(*, session: Session) -> SessionSummary:
    """Figures of one session whose segments were prefetched (see session_list_with_segments)."""
    segments = list(session.segments.all())
    return SessionSummary(session=session, segments=len(segments), words=sum(len(s.text.split()) for s in segments))


def session_list_with_segments(*, tenant_id: int) -> QuerySet[Session]:
    return session_list(tenant_id=tenant_id).prefetch_related(
        Prefetch("segments", queryset=Segment.objects.only("session_id", "index", "text"))
    )


def month_start(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def usage_seconds_this_month(
    *, tenant_id: int, now: datetime | None = None, excluding_session_id: uuid.UUID | None = None
) -> float:
    """Audio seconds of the tenant's sessions started this calendar month (UTC), as metered.

    The one place the monthly usage is summed: the quota check (tenant_allowance), the REST API,
    the dashboard and the admin all read it here. ``excluding_session_id`` leaves out the session
    asking, which counts its own audio as it goes.
    """
    sessions = Session.objects.filter(tenant_id=tenant_id, started_at__gte=month_start(now))
    if excluding_session_id is not None:
        sessions = sessions.exclude(pk=excluding_session_id)
    return float(sessions.aggregate(total=Sum("audio_seconds"))["total"] or 0.0)


@dataclass(frozen=True)
class TenantAllowance:
    """What a tenant may still stream: its cap on live streams and its monthly audio left."""

    max_concurrent_streams: int
    quota_seconds: float
    used_seconds: float  # this month, by sessions other than the one asking
    active: bool = True  # false once the tenant is suspended or the session's key revoked
    defaults: SessionDefaults = NO_DEFAULTS  # the owner's session defaults, read with the rest

    @property
    def left_seconds(self) -> float:
        """This month's audio left (zero or less once used up): the gateway and file jobs cut here."""
        return self.quota_seconds - self.used_seconds


def tenant_allowance(
    *, tenant_id: int, excluding_session_id: uuid.UUID | None = None, api_key_id: int | None = None
) -> TenantAllowance:
    from accounts.models import ApiKey, Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    key_revoked = api_key_id is not None and ApiKey.objects.filter(pk=api_key_id, revoked_at__isnull=False).exists()
    used = usage_seconds_this_month(tenant_id=tenant_id, excluding_session_id=excluding_session_id)
    return TenantAllowance(
        tenant.max_concurrent_streams,
        float(tenant.monthly_audio_seconds_quota),
        used,
        active=tenant.is_active and not key_revoked,
        defaults=session_defaults_of(tenant),
    )


def session_defaults_of(tenant: "Tenant") -> SessionDefaults:
    """The tenant's session defaults (model, language, endpointing, final model) as parse_start takes them."""
    return SessionDefaults(
        tenant.default_model, tenant.default_language, tenant.default_endpointing_ms, tenant.default_final_model
    )


def session_defaults_get(*, tenant_id: int) -> SessionDefaults:
    from accounts.models import Tenant

    return session_defaults_of(Tenant.objects.get(pk=tenant_id))


def session_defaults_effective(*, defaults: SessionDefaults) -> SessionConfig:
    """What a session of the tenant that names nothing gets now: its defaults over the server's."""
    from transcription.engine_settings import session_limits

    return parse_start({}, session_limits(), defaults=defaults)


@dataclass(frozen=True)
class DailyUsage:
    """Audio minutes per day per tenant name, over consecutive days ending today (UTC)."""

    days: list[date]
    minutes: dict[str, list[float]]


def usage_per_day_all_tenants(*, days: int = 30, now: datetime | None = None) -> DailyUsage:
    """For staff only: every tenant's metered audio per day, by the day its sessions started."""
    today = (now or timezone.now()).date()
    first = today - timedelta(days=days - 1)
    day_list = [first + timedelta(days=i) for i in range(days)]
    rows = (
        Session.objects.filter(started_at__date__gte=first)
        .annotate(day=TruncDate("started_at"))
        .values("tenant__name", "day")
        .annotate(total=Sum("audio_seconds"))
    )
    minutes: dict[str, list[float]] = {}
    for row in rows:
        series = minutes.setdefault(row["tenant__name"], [0.0] * days)
        index = (row["day"] - first).days
        if 0 <= index < days:
            series[index] += float(row["total"] or 0.0) / 60.0
    return DailyUsage(days=day_list, minutes=dict(sorted(minutes.items())))


def usage_per_day(*, tenant_id: int, days: int = 30, now: datetime | None = None) -> list[tuple[date, float]]:
    """The tenant's metered audio seconds per day (UTC, by session start), oldest first, zeros included."""
    today = (now or timezone.now()).date()
    first = today - timedelta(days=days - 1)
    rows = (
        Session.objects.filter(tenant_id=tenant_id, started_at__date__gte=first)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .annotate(total=Sum("audio_seconds"))
    )
    totals = {row["day"]: float(row["total"] or 0.0) for row in rows}
    return [(day, totals.get(day, 0.0)) for day in (first + timedelta(days=i) for i in range(days))]


@dataclass(frozen=True)
class PlatformFigures:
    """Across all tenants, for operators' metrics: never shown to a tenant."""

    live_sessions: int
    audio_seconds: float
    closes_by_reason: dict[str, int]


def platform_figures() -> PlatformFigures:
    live = Session.objects.filter(status=Session.Status.ACTIVE).count()
    audio = Session.objects.aggregate(total=Sum("audio_seconds"))["total"] or 0.0
    closes = Session.objects.exclude(close_reason="").values("close_reason").annotate(n=Count("id"))
    return PlatformFigures(live, float(audio), {row["close_reason"]: row["n"] for row in closes})


def sessions_stale(*, older_than_s: float, now: datetime | None = None) -> QuerySet[Session]:
    """Live streams whose heartbeat (``last_seen_at``) is older than ``older_than_s``: active, or
    interrupted past the resume grace. File sessions end with their job.

    Cross-tenant on purpose: for the sweeper only (transcription.sweeper), never a tenant's request.
    """
    from django.conf import settings

    now = now or timezone.now()
    grace_over = now - timedelta(seconds=settings.ASR_RESUME_GRACE_S)
    return Session.objects.filter(
        ~Q(status=Session.Status.CLOSED),  # the condition of the index on last_seen_at, so it is used
        Q(status=Session.Status.ACTIVE) | Q(status=Session.Status.INTERRUPTED, interrupted_at__lt=grace_over),
        source=Session.Source.STREAM,
        last_seen_at__lt=now - timedelta(seconds=older_than_s),
    )
