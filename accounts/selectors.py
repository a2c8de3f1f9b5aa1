"""Reads for tenants and API keys."""

from django.conf import settings

from accounts import keys
from accounts.models import ApiKey, Tenant


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
