"""A tenant with an API key, made through the services as the product makes one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import ApiKey, Tenant


@dataclass
class TenantWithKey:
    tenant: Tenant
    api_key: ApiKey
    raw_key: str


def make_tenant(name: str) -> TenantWithKey:
    from accounts import services  # Django's apps are ready only once pytest-django set them up

    tenant = services.tenant_create(name=name, plan="pro")  # room for the streams a test opens
    api_key, raw = services.api_key_create(tenant=tenant, name="test")
    return TenantWithKey(tenant, api_key, raw)
