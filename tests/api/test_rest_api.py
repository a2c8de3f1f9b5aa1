"""REST API v1 through DRF's test client: auth by key or session, tenant scoping, keys, tokens, usage."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import selectors, services
from accounts.models import Membership
from transcription import services as transcription_services
from transcription.models import Session

pytestmark = pytest.mark.django_db


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def member_client(tenant, username: str, role: str = Membership.Role.OWNER) -> APIClient:
    user = get_user_model().objects.create_user(username=username, password="pw-123456-long")
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = APIClient()
    client.force_login(user)
    return client


def stored_session(tenant, *, seconds: float = 3.0, text: str = "hello", started_at=None) -> Session:
    session = transcription_services.session_start(
        tenant_id=tenant.pk, api_key_id=None, language="en", engine="test", sample_rate=16000
    )
    transcription_services.segment_store(
        tenant_id=tenant.pk, session_id=session.id, index=0, start=0.0, end=1.0, text=text, reason="silence"
    )
    transcription_services.session_finish(
        tenant_id=tenant.pk, session_id=session.id, close_reason="stop", audio_seconds=seconds
    )
    if started_at is not None:
        Session.objects.filter(pk=session.pk).update(started_at=started_at)
    return session


def test_no_credentials_or_a_bad_key_is_401(tenant_a):
    assert APIClient().get(reverse("api-sessions")).status_code in (401, 403)
    assert key_client("asr_00000000_nope").get(reverse("api-sessions")).status_code == 401


def test_revoked_key_and_suspended_tenant_are_refused(tenant_a, tenant_b):
    services.api_key_revoke(tenant=tenant_a.tenant, prefix=tenant_a.api_key.prefix)
    assert key_client(tenant_a.raw_key).get(reverse("api-usage")).status_code == 401
    services.tenant_suspend(tenant=tenant_b.tenant)
    assert key_client(tenant_b.raw_key).get(reverse("api-usage")).status_code == 401


def test_token_is_minted_for_a_key_and_for_a_session_and_works_once(tenant_a):
    for client in (key_client(tenant_a.raw_key), member_client(tenant_a.tenant, "ada")):
        response = client.post(reverse("api-tokens"))
        assert response.status_code == 201 and response.json()["expires_in"] == 60
        token = services.stream_token_consume(raw_token=response.json()["token"])
        assert token is not None and token.tenant_id == tenant_a.tenant.pk
        assert services.stream_token_consume(raw_token=response.json()["token"]) is None


def test_session_list_is_the_callers_tenant_only_and_filters_by_date(tenant_a, tenant_b):
    old = stored_session(tenant_a.tenant, started_at=timezone.now() - datetime.timedelta(days=10))
    new = stored_session(tenant_a.tenant)
    stored_session(tenant_b.tenant)
    body = key_client(tenant_a.raw_key).get(reverse("api-sessions")).json()
    assert body["count"] == 2 and {s["id"] for s in body["results"]} == {str(old.id), str(new.id)}
    since = (timezone.now() - datetime.timedelta(days=1)).date().isoformat()
    filtered = key_client(tenant_a.raw_key).get(reverse("api-sessions"), {"since": since}).json()
    assert [s["id"] for s in filtered["results"]] == [str(new.id)]
    for client in (key_client(tenant_b.raw_key), member_client(tenant_b.tenant, "bob")):
        assert client.get(reverse("api-sessions")).json()["count"] == 1


def test_session_detail_has_segments_and_is_404_for_another_tenant(tenant_a, tenant_b):
    session = stored_session(tenant_a.tenant, text="secret words")
    url = reverse("api-session-detail", args=[session.id])
    body = key_client(tenant_a.raw_key).get(url).json()
    assert body["segments"][0]["text"] == "secret words"
    assert key_client(tenant_b.raw_key).get(url).status_code == 404
    assert member_client(tenant_b.tenant, "bob").get(url).status_code == 404


def test_usage_is_this_month_and_per_day_for_the_callers_tenant(tenant_a, tenant_b):
    stored_session(tenant_a.tenant, seconds=90.0)
    stored_session(tenant_b.tenant, seconds=7.0)
    body = key_client(tenant_a.raw_key).get(reverse("api-usage")).json()
    assert body["used_seconds"] == pytest.approx(90.0)
    assert len(body["days"]) == 30 and body["days"][-1]["audio_seconds"] == pytest.approx(90.0)
    assert member_client(tenant_b.tenant, "bob").get(reverse("api-usage")).json()["used_seconds"] == pytest.approx(7.0)


def test_keys_list_create_revoke_for_owner_with_secret_shown_once(tenant_a):
    client = member_client(tenant_a.tenant, "ada")
    created = client.post(reverse("api-keys"), {"name": "ci"}, format="json")
    assert created.status_code == 201 and created.json()["key"].startswith("asr_")
    assert selectors.api_key_authenticate(raw_key=created.json()["key"]) is not None
    listed = client.get(reverse("api-keys")).json()
    assert {k["name"] for k in listed} == {"test", "ci"} and all("key" not in k for k in listed)
    prefix = created.json()["prefix"]
    revoked = client.post(reverse("api-key-revoke", args=[prefix]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert selectors.api_key_authenticate(raw_key=created.json()["key"]) is None


def test_keys_are_owner_only(tenant_a):
    client = member_client(tenant_a.tenant, "mo", role=Membership.Role.MEMBER)
    assert client.get(reverse("api-keys")).status_code == 403
    assert client.post(reverse("api-keys"), {"name": "x"}, format="json").status_code == 403
    assert client.post(reverse("api-key-revoke", args=[tenant_a.api_key.prefix])).status_code == 403


def test_keys_of_another_tenant_are_not_listed_and_revoking_them_is_404(tenant_a, tenant_b):
    for client in (key_client(tenant_b.raw_key), member_client(tenant_b.tenant, "bob")):
        assert tenant_a.api_key.prefix not in {k["prefix"] for k in client.get(reverse("api-keys")).json()}
        assert client.post(reverse("api-key-revoke", args=[tenant_a.api_key.prefix])).status_code == 404
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is not None


def test_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/sessions" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower() and b"https://" not in docs.content
