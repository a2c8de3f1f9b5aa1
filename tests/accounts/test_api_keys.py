"""API keys: random, hashed at rest with a keyed hash, shown once, revocable; the CLI commands."""

import io

import pytest
from django.core.management import CommandError, call_command

from accounts import keys, selectors, services
from accounts.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def test_key_authenticates_and_only_a_keyed_hash_is_stored(tenant_a, settings):
    stored = ApiKey.objects.get(pk=tenant_a.api_key.pk)
    secret = tenant_a.raw_key.split("_", 2)[2]
    assert secret not in stored.secret_hash and tenant_a.raw_key not in str(ApiKey.objects.values().get(pk=stored.pk))
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) == stored
    settings.SECRET_KEY = "another-server-secret"
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is None


def test_keys_are_unique_and_random(tenant_a):
    raws = {services.api_key_create(tenant=tenant_a.tenant)[1] for _ in range(20)}
    assert len(raws) == 20
    assert all(keys.parse_key(raw) is not None for raw in raws)


@pytest.mark.parametrize("raw", ["", "asr_", "asr_short_secret", "Bearer x", "asr_" + "a" * 12, "x" * 500])
def test_malformed_keys_are_rejected_without_error(tenant_a, raw):
    assert selectors.api_key_authenticate(raw_key=raw) is None


def test_revoked_key_and_suspended_tenant_stop_working(tenant_a):
    services.api_key_revoke(tenant=tenant_a.tenant, prefix=tenant_a.api_key.prefix)
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is None
    _, raw = services.api_key_create(tenant=tenant_a.tenant)
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(is_active=False)
    assert selectors.api_key_authenticate(raw_key=raw) is None


def test_a_tenant_cannot_revoke_another_tenant_s_key(tenant_a, tenant_b):
    with pytest.raises(ApiKey.DoesNotExist):
        services.api_key_revoke(tenant=tenant_b.tenant, prefix=tenant_a.api_key.prefix)
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is not None


def test_create_tenant_prints_a_working_key_alone_on_its_last_line():
    out = io.StringIO()
    call_command("create_tenant", "acme", stdout=out)
    last_line = out.getvalue().strip().splitlines()[-1]
    api_key = selectors.api_key_authenticate(raw_key=last_line)
    assert api_key is not None and api_key.tenant.name == "acme"


def test_create_api_key_prints_a_working_key_for_that_tenant(tenant_a):
    out = io.StringIO()
    call_command("create_api_key", "tenant-a", "--name", "ci", stdout=out)
    api_key = selectors.api_key_authenticate(raw_key=out.getvalue().strip().splitlines()[-1])
    assert api_key.tenant == tenant_a.tenant and api_key.name == "ci"


def test_commands_fail_clearly_on_unknown_or_duplicate_tenants(tenant_a):
    with pytest.raises(CommandError, match="No tenant named 'nobody'"):
        call_command("create_api_key", "nobody", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_tenant", "tenant-a", stdout=io.StringIO())
    assert Tenant.objects.filter(name="tenant-a").count() == 1


def test_revoke_api_key_command(tenant_a):
    call_command("revoke_api_key", "tenant-a", tenant_a.api_key.prefix, stdout=io.StringIO())
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is None
