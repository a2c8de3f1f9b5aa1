"""Writes for tenants and API keys."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Tenant

logger = logging.getLogger(__name__)


@transaction.atomic
def tenant_create(*, name: str, plan: str = "free") -> Tenant:
    tenant = Tenant.objects.create(name=name, plan=plan)
    logger.info("tenant created tenant_id=%s", tenant.pk)
    return tenant


@transaction.atomic
def api_key_create(*, tenant: Tenant, name: str = "default") -> tuple[ApiKey, str]:
    """Create a key and return it with its full secret string, which is never stored."""
    raw, parsed = keys.generate_key()
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=parsed.prefix,
        secret_hash=keys.hash_secret(parsed.secret, pepper=settings.SECRET_KEY),
    )
    logger.info("api key created tenant_id=%s prefix=%s", tenant.pk, api_key.prefix)
    return api_key, raw


@transaction.atomic
def api_key_revoke(*, tenant: Tenant, prefix: str) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().get(tenant=tenant, prefix=prefix)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        logger.info("api key revoked tenant_id=%s prefix=%s", tenant.pk, prefix)
    return api_key


def api_key_mark_used(*, api_key_id: int) -> None:
    ApiKey.objects.filter(pk=api_key_id).update(last_used_at=timezone.now())
