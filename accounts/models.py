"""Tenants, their members and their API keys."""

from django.conf import settings
from django.db import models


class Tenant(models.Model):
    """A customer of the platform: owns keys, sessions and a monthly audio quota."""

    name = models.CharField(max_length=100, unique=True)
    plan = models.CharField(max_length=30, default="free")
    monthly_audio_seconds_quota = models.PositiveIntegerField(default=10 * 3600)
    max_concurrent_streams = models.PositiveIntegerField(default=4)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The key that signs its webhook callbacks, sealed (accounts/webhook_secrets.py); "" until needed.
    webhook_secret_sealed = models.CharField(max_length=255, blank=True, default="")
    webhook_secret_created_at = models.DateTimeField(null=True, blank=True)
    # The owner's defaults for sessions that do not choose for themselves ("" / None: the server's).
    # Checked against the model catalogue by transcription, which applies them at each start.
    default_model = models.CharField(max_length=50, blank=True, default="")
    default_language = models.CharField(max_length=10, blank=True, default="")
    default_endpointing_ms = models.PositiveIntegerField(null=True, blank=True)
    # Two-pass: the model that decodes each final again ("": none, or the server's ASR_FINAL_MODEL).
    default_final_model = models.CharField(max_length=50, blank=True, default="")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class ApiKey(models.Model):
    """An API key. Only a keyed hash of the secret is stored; the prefix identifies it to people."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class StreamToken(models.Model):
    """A short-lived, single-use WebSocket credential minted for a logged-in browser.

    The page never holds a long-lived key: it mints one of these just before it connects. Only a
    keyed hash is stored, and consuming it is a single conditional UPDATE, so it works once.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="stream_tokens")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="stream_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"stream token {self.pk} ({self.tenant})"
