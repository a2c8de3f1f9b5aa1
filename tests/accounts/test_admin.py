"""The staff admin: tenants with usage and live streams, keys, sessions, the usage chart."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts import selectors
from accounts.models import Tenant
from transcription import services as transcription_services

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "admin:accounts_tenant_changelist",
    "admin:accounts_apikey_changelist",
    "admin:transcription_session_changelist",
    "admin:transcription_usage",
]


def logged_in(*, staff: bool) -> Client:
    user = get_user_model().objects.create_user(username=f"u{staff}", password="pw-123456-long", is_staff=staff)
    if staff:
        user.is_superuser = True
        user.save()
    client = Client()
    client.force_login(user)
    return client


def stored_session(tenant: Tenant, *, seconds: float, text: str = "hello world"):
    session = transcription_services.session_start(
        tenant_id=tenant.pk, api_key_id=None, language="en", engine="test", sample_rate=16000
    )
    transcription_services.segment_store(
        tenant_id=tenant.pk, session_id=session.id, index=0, start=0.0, end=1.0, text=text, reason="silence"
    )
    transcription_services.session_finish(
        tenant_id=tenant.pk, session_id=session.id, close_reason="stop", audio_seconds=seconds
    )
    return session


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_staff_sees_admin_pages(tenant_a, name):
    stored_session(tenant_a.tenant, seconds=120.0)
    response = logged_in(staff=True).get(reverse(name))
    assert response.status_code == 200


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_non_staff_user_is_sent_to_admin_login(tenant_a, name):
    response = logged_in(staff=False).get(reverse(name))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_tenant_list_shows_usage_against_quota_and_live_streams(tenant_a):
    stored_session(tenant_a.tenant, seconds=1800.0)
    response = logged_in(staff=True).get(reverse("admin:accounts_tenant_changelist"))
    body = response.content.decode()
    assert "0.50 / 100.00 (0%)" in body  # pro plan: 100 h
    assert "Live streams now" in body


def test_the_tenant_page_shows_the_final_model_with_the_other_session_defaults(tenant_a):
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(default_model="base", default_final_model="base")
    page = logged_in(staff=True).get(reverse("admin:accounts_tenant_change", args=[tenant_a.tenant.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    names = ["default_model", "default_language", "default_endpointing_ms", "default_final_model"]
    positions = [html.index(f'name="{name}"') for name in names]
    assert positions == sorted(positions) and 'name="default_final_model" value="base"' in html


def test_api_key_pages_never_show_the_secret(tenant_a):
    client = logged_in(staff=True)
    listing = client.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    detail = client.get(reverse("admin:accounts_apikey_change", args=[tenant_a.api_key.pk])).content.decode()
    secret = tenant_a.raw_key.split("_", 2)[2]
    assert tenant_a.api_key.prefix in listing
    assert secret not in listing and secret not in detail
    assert tenant_a.api_key.secret_hash not in detail


def test_suspend_action_stops_the_tenants_keys_at_once(tenant_a, tenant_b):
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is not None
    response = logged_in(staff=True).post(
        reverse("admin:accounts_tenant_changelist"),
        {"action": "suspend", "_selected_action": [tenant_a.tenant.pk]},
    )
    assert response.status_code == 302
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is None
    assert selectors.api_key_authenticate(raw_key=tenant_b.raw_key) is not None


def test_change_quota_action_asks_then_sets_the_quota(tenant_a, tenant_b):
    client = logged_in(staff=True)
    url = reverse("admin:accounts_tenant_changelist")
    form = client.post(url, {"action": "change_quota", "_selected_action": [tenant_a.tenant.pk]})
    assert form.status_code == 200 and "monthly_audio_hours" in form.content.decode()
    done = client.post(
        url,
        {
            "action": "change_quota",
            "_selected_action": [tenant_a.tenant.pk],
            "monthly_audio_hours": "2.5",
            "apply": "1",
        },
    )
    assert done.status_code == 302
    tenant_a.tenant.refresh_from_db()
    tenant_b.tenant.refresh_from_db()
    assert tenant_a.tenant.monthly_audio_seconds_quota == 9000
    assert tenant_b.tenant.monthly_audio_seconds_quota == 100 * 3600


def test_revoke_action_revokes_only_the_selected_key(tenant_a, tenant_b):
    logged_in(staff=True).post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [tenant_a.api_key.pk]},
    )
    assert selectors.api_key_authenticate(raw_key=tenant_a.raw_key) is None
    assert selectors.api_key_authenticate(raw_key=tenant_b.raw_key) is not None


def test_sessions_are_searchable_by_transcript_text(tenant_a, tenant_b):
    wanted = stored_session(tenant_a.tenant, seconds=5.0, text="the quick brown fox")
    other = stored_session(tenant_b.tenant, seconds=5.0, text="lorem ipsum")
    client = logged_in(staff=True)
    body = client.get(reverse("admin:transcription_session_changelist"), {"q": "brown fox"}).content.decode()
    assert str(wanted.id) in body and str(other.id) not in body
    detail = client.get(reverse("admin:transcription_session_change", args=[wanted.id])).content.decode()
    assert "the quick brown fox" in detail


def test_usage_page_charts_minutes_per_tenant(tenant_a, tenant_b):
    stored_session(tenant_a.tenant, seconds=600.0)
    stored_session(tenant_b.tenant, seconds=120.0)
    body = logged_in(staff=True).get(reverse("admin:transcription_usage")).content.decode()
    assert "<svg" in body and body.count("<polyline") == 2
    assert "tenant-a" in body and "10.0" in body and "2.0" in body
    assert "http://" not in body.split("<svg", 1)[1].split("</svg>", 1)[0].replace("http://www.w3.org", "")


def test_tenant_list_counts_live_streams_from_admission(tenant_a):
    from asgiref.sync import async_to_sync

    from transcription.gateway.admission import get_admission

    async_to_sync(get_admission().acquire)(tenant_a.tenant.pk, "s1", 5)
    try:
        body = logged_in(staff=True).get(reverse("admin:accounts_tenant_changelist")).content.decode()
        assert '<td class="field-live_streams">1</td>' in body
    finally:
        async_to_sync(get_admission().release)(tenant_a.tenant.pk, "s1")
