from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts import services
from accounts.models import ApiKey, Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class QuotaForm(forms.Form):
    monthly_audio_hours = forms.FloatField(min_value=0, label="Monthly audio quota (hours)")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Tenants, their plan and quota. transcription/admin.py registers a subclass in its place that
    adds what only transcription knows (usage this month, live streams): accounts imports nothing
    of transcription."""

    list_display = ["name", "plan", "max_concurrent_streams", "is_active", "created_at"]
    list_filter = ["plan", "is_active"]
    search_fields = ["name"]
    inlines = [MembershipInline]
    actions = ["suspend", "change_quota"]
    # The webhook signing secret is the tenant's own: staff neither see nor set it (even sealed).
    exclude = ["webhook_secret_sealed"]
    readonly_fields = ["webhook_secret_created_at"]

    @admin.action(description="Suspend selected tenants (their keys stop working at once)", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            services.tenant_suspend(tenant=tenant)
        self.message_user(request, f"Suspended {queryset.count()} tenant(s).")

    @admin.action(description="Change monthly quota of selected tenants", permissions=["change"])
    def change_quota(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> HttpResponse | None:
        form = QuotaForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            seconds = round(form.cleaned_data["monthly_audio_hours"] * 3600)
            for tenant in queryset:
                services.tenant_set_quota(tenant=tenant, monthly_audio_seconds_quota=seconds)
            self.message_user(request, f"Quota of {queryset.count()} tenant(s) set to {seconds} s.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Change monthly quota",
            "form": form,
            "tenants": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/accounts/tenant/change_quota.html", context)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created by the tenant or the CLI (the secret is shown once there); never edited here."""

    list_display = ["prefix", "name", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant", "revoked_at"]
    search_fields = ["prefix", "name", "tenant__name"]
    readonly_fields = fields = ("prefix", "name", "tenant", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        updated = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {updated} key(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "tenant__name"]
