"""Sign up, log in and out, the dashboard and its API keys, through Django's test client."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts import selectors, services
from accounts.models import ApiKey, Membership, Tenant
from transcription import services as transcription_services

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"


def signup_data(**overrides: str) -> dict[str, str]:
    data = {
        "tenant_name": "Acme",
        "username": "ada",
        "email": "ada@example.com",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    return {**data, **overrides}


def member(tenant: Tenant, username: str) -> Client:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OWNER)
    client = Client()
    client.force_login(user)
    return client


def test_signup_creates_tenant_owner_and_a_key_shown_once(client):
    response = client.post(reverse("signup"), signup_data())
    assert response.status_code == 200
    tenant = Tenant.objects.get(name="Acme")
    user = get_user_model().objects.get(username="ada")
    assert Membership.objects.get(user=user).tenant == tenant
    assert Membership.objects.get(user=user).role == Membership.Role.OWNER
    raw = response.context["raw_key"]
    assert raw in response.content.decode() and "you will not see it again" in response.content.decode()
    assert selectors.api_key_authenticate(raw_key=raw).tenant == tenant
    assert "no-store" in response["Cache-Control"]
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200 and raw not in dashboard.content.decode()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"password1": "short", "password2": "short"}, "password2"),
        ({"password1": "12345678901", "password2": "12345678901"}, "password2"),
        ({"password1": "password123", "password2": "password123"}, "password2"),
        ({"password2": "something else entirely 9"}, "password2"),
        ({"tenant_name": "  "}, "tenant_name"),
    ],
)
def test_signup_applies_django_s_password_validators_and_required_fields(client, overrides, field):
    response = client.post(reverse("signup"), signup_data(**overrides))
    assert response.status_code == 200 and field in response.context["form"].errors
    assert not Tenant.objects.exists() and not get_user_model().objects.exists()


def test_signup_refuses_a_taken_workspace_name_or_username(client, tenant_a):
    response = client.post(reverse("signup"), signup_data(tenant_name="TENANT-A"))
    assert "tenant_name" in response.context["form"].errors
    get_user_model().objects.create_user(username="ada", password=PASSWORD)
    response = client.post(reverse("signup"), signup_data(tenant_name="Fresh"))
    assert "username" in response.context["form"].errors
    assert not Tenant.objects.filter(name="Fresh").exists()


def test_forms_are_csrf_protected(tenant_a):
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("signup"), signup_data()).status_code == 403
    assert client.post(reverse("login"), {"username": "x", "password": "y"}).status_code == 403
    logged_in = member(tenant_a.tenant, "bob")
    logged_in.handler.enforce_csrf_checks = True
    assert logged_in.post(reverse("stream_token")).status_code == 403
    assert logged_in.post(reverse("api_key_create"), {"name": "x"}).status_code == 403


def test_failed_login_does_not_say_which_part_was_wrong(client):
    get_user_model().objects.create_user(username="ada", password=PASSWORD)
    wrong_password = client.post(reverse("login"), {"username": "ada", "password": "nope"})
    unknown_user = client.post(reverse("login"), {"username": "nobody", "password": "nope"})
    for response in (wrong_password, unknown_user):
        assert response.status_code == 200 and "match an account" in response.content.decode()
    assert wrong_password.context["form"].errors == unknown_user.context["form"].errors


def test_login_and_logout(client):
    client.post(reverse("signup"), signup_data())
    client.post(reverse("logout"))
    assert client.get(reverse("dashboard")).status_code == 302
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("record")
    assert client.get(reverse("dashboard")).status_code == 200


def test_pages_need_a_login(client):
    for name in ("dashboard", "record", "transcript_list"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.post(reverse("stream_token")).status_code == 401


def test_a_user_without_a_workspace_is_told_so(client):
    user = get_user_model().objects.create_user(username="loner", password=PASSWORD)
    client.force_login(user)
    assert client.get(reverse("record")).status_code == 403
    assert client.post(reverse("stream_token")).status_code == 403


def test_dashboard_shows_own_keys_usage_and_recent_sessions_only(tenant_a, tenant_b):
    session = transcription_services.session_start(
        tenant_id=tenant_a.tenant.pk, api_key_id=None, language="en", engine="t", sample_rate=16000
    )
    transcription_services.session_finish(
        tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=90
    )
    response = member(tenant_a.tenant, "ann").get(reverse("dashboard"))
    page = response.content.decode()
    assert tenant_a.api_key.prefix in page and tenant_b.api_key.prefix not in page
    assert response.context["usage_seconds"] == 90
    assert "1 min 30 s" in page and str(session.pk) in page


def test_dashboard_creates_and_revokes_keys(tenant_a):
    client = member(tenant_a.tenant, "ann")
    response = client.post(reverse("api_key_create"), {"name": "production"})
    raw = response.context["raw_key"]
    assert selectors.api_key_authenticate(raw_key=raw).name == "production"
    prefix = response.context["api_key"].prefix
    assert client.post(reverse("api_key_revoke", args=[prefix])).status_code == 302
    assert selectors.api_key_authenticate(raw_key=raw) is None
    assert client.post(reverse("api_key_create"), {"name": ""}).status_code == 302


def test_a_tenant_cannot_revoke_another_tenant_s_key_from_the_dashboard(tenant_a, tenant_b):
    client = member(tenant_b.tenant, "eve")
    assert client.post(reverse("api_key_revoke", args=[tenant_a.api_key.prefix])).status_code == 404
    assert ApiKey.objects.get(pk=tenant_a.api_key.pk).revoked_at is None


def test_stream_token_view_mints_a_token_for_the_member_s_tenant(tenant_a):
    response = member(tenant_a.tenant, "ann").post(reverse("stream_token"))
    assert response.status_code == 200 and response.json()["expires_in"] == 60
    assert "no-store" in response["Cache-Control"]
    token = services.stream_token_consume(raw_token=response.json()["token"])
    assert token.tenant == tenant_a.tenant
    assert member(tenant_a.tenant, "bob").get(reverse("stream_token")).status_code == 405
