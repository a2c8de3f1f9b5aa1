from asgiref.sync import async_to_sync
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from accounts.admin import TenantAdmin
from accounts.models import Tenant
from transcription.gateway.admission import get_admission
from transcription.models import FileTranscription, Segment, Session
from transcription.selectors import DailyUsage, usage_per_day_all_tenants, usage_seconds_this_month

CHART_W, CHART_H, PAD = 760, 260, 40
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


class SegmentInline(admin.TabularInline):
    model = Segment
    extra = 0
    readonly_fields = fields = ("index", "start", "end", "text", "reason")
    can_delete = False


def usage_chart(usage: DailyUsage) -> dict:
    """SVG coordinates for one polyline per tenant: drawn server-side, so no script or CDN is needed."""
    peak = max((m for series in usage.minutes.values() for m in series), default=0.0) or 1.0
    step = (CHART_W - 2 * PAD) / max(len(usage.days) - 1, 1)

    def xy(i: int, minutes: float) -> str:
        return f"{PAD + i * step:.1f},{CHART_H - PAD - minutes / peak * (CHART_H - 2 * PAD):.1f}"

    lines = [
        {
            "tenant": name,
            "colour": COLOURS[n % len(COLOURS)],
            "points": " ".join(xy(i, m) for i, m in enumerate(series)),
            "total": sum(series),
        }
        for n, (name, series) in enumerate(usage.minutes.items())
    ]
    ticks = [
        {"x": f"{PAD + i * step:.1f}", "label": day.strftime("%m-%d")} for i, day in enumerate(usage.days) if i % 5 == 0
    ]
    return {
        "width": CHART_W,
        "height": CHART_H,
        "pad": PAD,
        "right": CHART_W - PAD,
        "bottom": CHART_H - PAD,
        "peak": peak,
        "lines": lines,
        "ticks": ticks,
    }


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "source",
        "protocol",
        "label",
        "started_at",
        "ended_at",
        "status",
        "close_reason",
        "audio_seconds",
        "language",
    ]
    list_filter = ["tenant", "source", "protocol", "status", "close_reason", "started_at"]
    search_fields = ["id", "label", "segments__text"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in Session._meta.fields]
    inlines = [SegmentInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        usage = path("usage/", self.admin_site.admin_view(self.usage_view), name="transcription_usage")
        return [usage, *super().get_urls()]

    def usage_view(self, request: HttpRequest) -> TemplateResponse:
        usage = usage_per_day_all_tenants(days=30)
        context = {
            **self.admin_site.each_context(request),
            "title": "Audio minutes per day per tenant (last 30 days, UTC)",
            "usage": usage,
            "chart": usage_chart(usage),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/transcription/session/usage.html", context)


@admin.register(FileTranscription)
class FileTranscriptionAdmin(admin.ModelAdmin):
    """Uploaded files: read-only; the transcript is on the linked session."""

    list_display = ["id", "tenant", "filename", "status", "duration_s", "processed_s", "error_code", "created_at"]
    list_filter = ["tenant", "status", "error_code", "created_at"]
    search_fields = ["id", "filename", "session__segments__text"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in FileTranscription._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


async def live_counts(tenant_ids: list[int]) -> list[int]:
    admission = get_admission()
    return [await admission.live_count(tenant_id) for tenant_id in tenant_ids]


admin.site.unregister(Tenant)


@admin.register(Tenant)
class TenantUsageAdmin(TenantAdmin):
    """accounts' Tenant admin, plus each tenant's usage this month and its live streams.

    Registered here, in place of accounts' own, because these figures are transcription's data and
    accounts (the ground floor) imports nothing of transcription.
    """

    list_display = [
        "name",
        "plan",
        "usage_vs_quota",
        "live_streams",
        "max_concurrent_streams",
        "is_active",
        "created_at",
    ]

    @admin.display(description="Usage this month / quota (h)")
    def usage_vs_quota(self, tenant: Tenant) -> str:
        used = usage_seconds_this_month(tenant_id=tenant.pk) / 3600
        quota = tenant.monthly_audio_seconds_quota / 3600
        percent = f" ({100 * used / quota:.0f}%)" if quota else ""
        return f"{used:.2f} / {quota:.2f}{percent}"

    @admin.display(description="Live streams now")
    def live_streams(self, tenant: Tenant) -> int | str:
        return getattr(tenant, "live_now", "?")

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Live counts for the page's tenants in one trip to the event loop (and to Redis)."""
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            tenants = list(changelist.result_list)
            for tenant, count in zip(tenants, async_to_sync(live_counts)([t.pk for t in tenants]), strict=True):
                tenant.live_now = count
        return response
