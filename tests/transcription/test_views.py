"""Transcript pages and downloads: the member's tenant only; another tenant's sessions are 404."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Tenant
from transcription import exports, services

pytestmark = pytest.mark.django_db


def member(tenant: Tenant, username: str) -> Client:
    user = get_user_model().objects.create_user(username=username, password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def finished_session(tenant_a):
    session = services.session_start(
        tenant_id=tenant_a.tenant.pk, api_key_id=None, language="en", engine="test", sample_rate=16000
    )
    for index, (start, end, text) in enumerate([(0.5, 2.25, "Ten of clubs."), (3.0, 3661.5, "Go forward ten meters.")]):
        services.segment_store(
            tenant_id=tenant_a.tenant.pk,
            session_id=session.pk,
            index=index,
            start=start,
            end=end,
            text=text,
            reason="vad",
        )
    return services.session_finish(
        tenant_id=tenant_a.tenant.pk, session_id=session.pk, close_reason="stop", audio_seconds=3662.0
    )


def test_list_shows_date_duration_words_and_close_reason(tenant_a, finished_session):
    page = member(tenant_a.tenant, "ann").get(reverse("transcript_list")).content.decode()
    assert str(finished_session.pk) in page
    assert "1 h 01 min" in page and ">7<" in page and "Client stopped" in page


def test_empty_list_invites_a_first_recording(tenant_a):
    page = member(tenant_a.tenant, "ann").get(reverse("transcript_list")).content.decode()
    assert "No transcripts yet" in page


def test_detail_shows_segments_with_times(tenant_a, finished_session):
    page = member(tenant_a.tenant, "ann").get(reverse("transcript_detail", args=[finished_session.pk]))
    html = page.content.decode()
    assert "0:00.5 – 0:02.2" in html or "0:00.5 – 0:02.3" in html
    assert "Ten of clubs." in html and "Go forward ten meters." in html


def test_downloads_as_txt_srt_and_json(tenant_a, finished_session):
    client = member(tenant_a.tenant, "ann")
    url = lambda fmt: reverse("transcript_download", args=[finished_session.pk, fmt])  # noqa: E731
    txt = client.get(url("txt"))
    assert txt.content.decode() == "Ten of clubs.\nGo forward ten meters.\n"
    assert txt["Content-Disposition"].startswith("attachment;") and txt["Content-Type"].startswith("text/plain")
    srt = client.get(url("srt")).content.decode()
    assert srt == (
        "1\n00:00:00,500 --> 00:00:02,250\nTen of clubs.\n\n2\n00:00:03,000 --> 01:01:01,500\nGo forward ten meters.\n"
    )
    data = json.loads(client.get(url("json")).content)
    assert data["session_id"] == str(finished_session.pk) and data["close_reason"] == "stop"
    assert [s["text"] for s in data["segments"]] == ["Ten of clubs.", "Go forward ten meters."]
    assert client.get(url("pdf")).status_code == 404


def test_another_tenant_gets_404_on_pages_and_downloads(tenant_a, tenant_b, finished_session):
    client = member(tenant_b.tenant, "eve")
    assert client.get(reverse("transcript_detail", args=[finished_session.pk])).status_code == 404
    for fmt in exports.FORMATS:
        assert client.get(reverse("transcript_download", args=[finished_session.pk, fmt])).status_code == 404
    assert str(finished_session.pk) not in client.get(reverse("transcript_list")).content.decode()
    assert str(finished_session.pk) not in client.get(reverse("dashboard")).content.decode()


def test_srt_timestamps():
    assert exports.srt_timestamp(0) == "00:00:00,000"
    assert exports.srt_timestamp(3725.0506) == "01:02:05,051"
