"""A tenant's webhook signing secret: made when needed, stored sealed, shown to its owner only,
rotated from the page or the command, and never logged."""

import logging
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts import selectors, services
from accounts.models import Membership, Tenant

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"


def logged_in(tenant: Tenant, username: str, role: str) -> Client:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_the_secret_is_made_once_and_kept_sealed(tenant_a, caplog):
    caplog.set_level(logging.DEBUG)
    assert selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk) is None
    secret = services.webhook_secret_ensure(tenant_id=tenant_a.tenant.pk)
    assert secret.startswith("whsec_") and len(secret) > 40
    assert services.webhook_secret_ensure(tenant_id=tenant_a.tenant.pk) == secret
    assert selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk) == secret
    stored = Tenant.objects.values_list("webhook_secret_sealed", flat=True).get(pk=tenant_a.tenant.pk)
    assert stored and secret not in stored and secret.removeprefix("whsec_") not in stored
    assert secret not in caplog.text


def test_rotation_replaces_the_secret_and_each_tenant_has_its_own(tenant_a, tenant_b, caplog):
    caplog.set_level(logging.DEBUG)
    old = services.webhook_secret_ensure(tenant_id=tenant_a.tenant.pk)
    other = services.webhook_secret_ensure(tenant_id=tenant_b.tenant.pk)
    new = services.webhook_secret_rotate(tenant_id=tenant_a.tenant.pk)
    assert new != old and other not in (old, new)
    assert selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk) == new
    assert selectors.webhook_secret_get(tenant_id=tenant_b.tenant.pk) == other
    assert new not in caplog.text and old not in caplog.text


def test_a_secret_sealed_under_another_secret_key_is_replaced(tenant_a, settings):
    old = services.webhook_secret_ensure(tenant_id=tenant_a.tenant.pk)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only"
    assert selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk) is None
    new = services.webhook_secret_ensure(tenant_id=tenant_a.tenant.pk)
    assert new != old and selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk) == new


def test_the_owner_sees_and_rotates_the_secret_a_member_cannot(tenant_a, tenant_b):
    owner = logged_in(tenant_a.tenant, "olga", Membership.Role.OWNER)
    page = owner.get(reverse("webhook_secret"))
    assert page.status_code == 200 and "None yet" in page.content.decode() and "no-store" in page["Cache-Control"]
    assert owner.post(reverse("webhook_secret")).status_code == 302
    first = selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk)
    assert first and first in owner.get(reverse("webhook_secret")).content.decode()
    owner.post(reverse("webhook_secret"))
    second = selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk)
    assert second and second != first
    assert reverse("webhook_secret") in owner.get(reverse("dashboard")).content.decode()
    member = logged_in(tenant_a.tenant, "mo", Membership.Role.MEMBER)
    assert member.get(reverse("webhook_secret")).status_code == 403
    assert member.post(reverse("webhook_secret")).status_code == 403
    assert selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk) == second
    services.webhook_secret_ensure(tenant_id=tenant_b.tenant.pk)
    theirs = selectors.webhook_secret_get(tenant_id=tenant_b.tenant.pk)
    assert theirs and theirs not in owner.get(reverse("webhook_secret")).content.decode()


def test_the_command_rotates_and_prints_the_new_secret_last(tenant_a):
    old = services.webhook_secret_ensure(tenant_id=tenant_a.tenant.pk)
    out = StringIO()
    call_command("rotate_webhook_secret", tenant_a.tenant.name, stdout=out)
    printed = out.getvalue().strip().splitlines()[-1]
    assert printed != old and printed == selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk)


def test_staff_cannot_see_the_sealed_secret_in_the_admin(tenant_a, admin_client):
    services.webhook_secret_ensure(tenant_id=tenant_a.tenant.pk)
    sealed = Tenant.objects.values_list("webhook_secret_sealed", flat=True).get(pk=tenant_a.tenant.pk)
    page = admin_client.get(reverse("admin:accounts_tenant_change", args=[tenant_a.tenant.pk]))
    assert page.status_code == 200 and sealed not in page.content.decode()
