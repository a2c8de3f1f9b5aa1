from django.contrib import admin

from transcription.models import Segment, Session


class SegmentInline(admin.TabularInline):
    model = Segment
    extra = 0
    fields = ["index", "start", "end", "text", "reason"]
    readonly_fields = fields
    can_delete = False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "started_at", "ended_at", "status", "close_reason", "audio_seconds", "language"]
    list_filter = ["tenant", "status", "close_reason", "started_at"]
    search_fields = ["id", "segments__text"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in Session._meta.fields]
    inlines = [SegmentInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
