"""Writes for tenants and API keys."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from accounts import keys, webhook_secrets
from accounts.models import ApiKey, Membership, StreamToken, Tenant

logger = logging.getLogger(__name__)


@transaction.atomic
def tenant_create(*, name: str, plan: str = "free") -> Tenant:
    """A tenant with its plan's quota and stream cap (each can then be changed for this tenant)."""
    if plan not in settings.ASR_PLANS:
        raise ValueError(f"Unknown plan {plan!r}; plans: {', '.join(settings.ASR_PLANS)}")
    tenant = Tenant.objects.create(name=name, plan=plan, **settings.ASR_PLANS[plan])
    logger.info("tenant created tenant_id=%s", tenant.pk)
    return tenant


def tenant_session_defaults_set(
    *, tenant_id: int, model: str, language: str, endpointing_ms: int | None, final_model: str
) -> None:
    """Store the tenant's session defaults as given; transcription checks them against its models first."""
    Tenant.objects.filter(pk=tenant_id).update(
        default_model=model,
        default_language=language,
        default_endpointing_ms=endpointing_ms,
        default_final_model=final_model,
    )
    logger.info(
        "tenant session defaults set tenant_id=%s model=%s language=%s endpointing_ms=%s final_model=%s",
        tenant_id, model or "-", language or "-", endpointing_ms, final_model or "-",
    )  # fmt: skip


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


@dataclass(frozen=True)
class SignupResult:
    user: User
    tenant: Tenant
    api_key: ApiKey
    raw_key: str


@transaction.atomic
def account_signup(*, tenant_name: str, username: str, email: str, password: str) -> SignupResult:
    """A new tenant, its owner and its first API key (the raw key is returned once, never stored)."""
    tenant = tenant_create(name=tenant_name)
    user = get_user_model().objects.create_user(username=username, email=email, password=password)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OWNER)
    api_key, raw = api_key_create(tenant=tenant, name="default")
    logger.info("signup tenant_id=%s user_id=%s", tenant.pk, user.pk)
    return SignupResult(user=user, tenant=tenant, api_key=api_key, raw_key=raw)


STREAM_TOKEN_TTL = timedelta(seconds=60)


def _stream_token_hash(raw_token: str) -> str:
    return keys.hash_secret(raw_token, pepper=settings.SECRET_KEY)


@transaction.atomic
def stream_token_mint(*, tenant: Tenant, user: User | None = None) -> tuple[str, StreamToken]:
    """A WebSocket token valid for STREAM_TOKEN_TTL and a single connection; returns the raw token."""
    now = timezone.now()
    StreamToken.objects.filter(expires_at__lt=now - timedelta(hours=1)).delete()
    raw = keys.generate_stream_token()
    token = StreamToken.objects.create(
        tenant=tenant, user=user, token_hash=_stream_token_hash(raw), expires_at=now + STREAM_TOKEN_TTL
    )
    logger.info("stream token minted tenant_id=%s token_id=%s", tenant.pk, token.pk)
    return raw, token


def stream_token_consume(*, raw_token: str) -> StreamToken | None:
    """Use a token: the unexpired, unused token of an active tenant, marked used; None otherwise.

    One conditional UPDATE, so two connections racing with the same token cannot both win.
    """
    if not raw_token or len(raw_token) > 200:
        return None
    now = timezone.now()
    token_hash = _stream_token_hash(raw_token)
    # Conditions on the row itself only (no join), so PostgreSQL rechecks them under the row lock.
    claimed = StreamToken.objects.filter(token_hash=token_hash, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now
    )
    if claimed != 1:
        return None
    token = StreamToken.objects.select_related("tenant").get(token_hash=token_hash)
    return token if token.tenant.is_active else None


def tenant_suspend(*, tenant: Tenant) -> Tenant:
    """Refuse the tenant's keys and tokens from now on (the key selector skips inactive tenants)."""
    if tenant.is_active:
        tenant.is_active = False
        tenant.save(update_fields=["is_active"])
        logger.info("tenant suspended tenant_id=%s", tenant.pk)
    return tenant


def tenant_set_quota(*, tenant: Tenant, monthly_audio_seconds_quota: int) -> Tenant:
    if monthly_audio_seconds_quota < 0:
        raise ValueError("A quota cannot be negative.")
    tenant.monthly_audio_seconds_quota = monthly_audio_seconds_quota
    tenant.save(update_fields=["monthly_audio_seconds_quota"])
    logger.info("tenant quota changed tenant_id=%s quota_s=%s", tenant.pk, monthly_audio_seconds_quota)
    return tenant


def webhook_secret_rotate(*, tenant_id: int) -> str:
    """A new secret for signing the tenant's callbacks, in force at once; returned in clear.

    Callbacks already on their way are signed with the new one from their next attempt on.
    """
    secret = webhook_secrets.generate_secret()
    Tenant.objects.filter(pk=tenant_id).update(
        webhook_secret_sealed=webhook_secrets.seal(secret, pepper=settings.SECRET_KEY),
        webhook_secret_created_at=timezone.now(),
    )
    logger.info("webhook secret rotated tenant_id=%s", tenant_id)
    return secret


@transaction.atomic
def webhook_secret_ensure(*, tenant_id: int) -> str:
    """The tenant's signing secret, made on first need (its first callback request).

    Under the tenant's row lock, so two first requests at once end up with the same secret. One
    sealed under an earlier SECRET_KEY cannot be read any more and is replaced.
    """
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    secret = webhook_secrets.unseal(tenant.webhook_secret_sealed, pepper=settings.SECRET_KEY)
    if secret is not None:
        return secret
    if tenant.webhook_secret_sealed:
        logger.warning("webhook secret unreadable (SECRET_KEY changed?), replaced tenant_id=%s", tenant_id)
    return webhook_secret_rotate(tenant_id=tenant_id)
