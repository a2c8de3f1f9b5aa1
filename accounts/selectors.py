"""Reads for tenants and API keys."""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from accounts import keys, webhook_secrets
from accounts.models import ApiKey, Membership, Tenant


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching a presented secret, with its tenant; None for anything else.

    Unknown prefixes still pay for one hash so that timing does not reveal which prefixes exist.
    """
    parsed = keys.parse_key(raw_key.strip())
    if parsed is None:
        return None
    api_key = (
        ApiKey.objects.select_related("tenant")
        .filter(prefix=parsed.prefix, revoked_at__isnull=True, tenant__is_active=True)
        .first()
    )
    stored = api_key.secret_hash if api_key else "0" * 64
    if not keys.secret_matches(parsed.secret, stored, pepper=settings.SECRET_KEY) or api_key is None:
        return None
    return api_key


def tenant_get_by_name(*, name: str) -> Tenant:
    return Tenant.objects.get(name=name)


def membership_for_user(*, user: User | AnonymousUser | None) -> Membership | None:
    """The user's membership of an active tenant (the oldest, if several); None for anyone else."""
    if user is None or not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("tenant")
        .filter(user=user, tenant__is_active=True)
        .order_by("created_at", "pk")
        .first()
    )


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    """The tenant's keys, active ones first, newest first."""
    return ApiKey.objects.filter(tenant=tenant).order_by("revoked_at", "-created_at")


def tenant_name_taken(*, name: str) -> bool:
    return Tenant.objects.filter(name__iexact=name).exists()


def webhook_secret_get(*, tenant_id: int) -> str | None:
    """The tenant's callback signing secret in clear; None before it has one (or if unreadable)."""
    sealed = Tenant.objects.filter(pk=tenant_id).values_list("webhook_secret_sealed", flat=True).first()
    return webhook_secrets.unseal(sealed or "", pepper=settings.SECRET_KEY)
