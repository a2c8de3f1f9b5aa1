"""File transcription with ``multichannel``: the REST API (in-process file threads) and Deepgram's
pre-recorded API (the official SDK against the real server) store a segment stream per channel."""

import json
import time

import pytest
from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from bench.evaluation import word_error_rate
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription import selectors
from transcription.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

DURATION_S = 5.0


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="module")
def two_talkers(eval_dir) -> tuple[bytes, dict[int, str]]:
    """The stereo WAV file's bytes and each channel's reference."""
    entry = json.loads((eval_dir / "stereo" / "manifest.jsonl").read_text().splitlines()[0])
    return (eval_dir / "stereo" / entry["audio"]).read_bytes(), {c["channel"]: c["text"] for c in entry["channels"]}


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def transcribe(client: APIClient, data: bytes, **fields) -> dict:
    upload = SimpleUploadedFile("call.wav", data)
    response = client.post(reverse("api-transcriptions"), {"file": upload, **fields}, format="multipart")
    assert response.status_code == 202, response.content
    job_id, deadline = response.json()["id"], time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(reverse("api-transcription-detail", kwargs={"id": job_id})).json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_rest_file_job_with_multichannel_stores_each_channel_s_segments_and_meters_both(tenant_a, two_talkers):
    audio, references = two_talkers
    client = key_client(tenant_a.raw_key)
    body = transcribe(client, audio, multichannel=True)

    assert body["status"] == "done" and body["duration_s"] == pytest.approx(DURATION_S, abs=0.05)
    segments = body["segments"]
    assert {s["channel"] for s in segments} == {0, 1}
    for channel in (0, 1):
        text = " ".join(s["text"] for s in segments if s["channel"] == channel)
        assert word_error_rate([references[channel]], [text]) <= 0.15, (channel, text)
    assert sorted(s["index"] for s in segments) == list(range(len(segments)))
    session = Session.objects.get(pk=body["session_id"])
    assert session.channels == 2 and session.audio_seconds == pytest.approx(2 * DURATION_S, abs=0.05)

    mixed = transcribe(client, audio)
    assert mixed["status"] == "done" and all(s["channel"] is None for s in mixed["segments"])
    assert Session.objects.get(pk=mixed["session_id"]).audio_seconds == pytest.approx(DURATION_S, abs=0.05)
    used = selectors.usage_seconds_this_month(tenant_id=tenant_a.tenant.pk)
    assert used == pytest.approx(3 * DURATION_S, abs=0.1)


def test_a_multichannel_file_longer_than_the_quota_left_counted_per_channel_is_refused(tenant_a, two_talkers):
    audio, _ = two_talkers
    tenant_a.tenant.monthly_audio_seconds_quota = 8  # the file lasts 5 s: 10 s metered per channel
    tenant_a.tenant.save(update_fields=["monthly_audio_seconds_quota"])
    client = key_client(tenant_a.raw_key)
    upload = SimpleUploadedFile("call.wav", audio)
    response = client.post(reverse("api-transcriptions"), {"file": upload, "multichannel": True}, format="multipart")
    assert response.status_code == 429 and response.json()["code"] == "quota_exceeded"
    assert transcribe(client, audio)["status"] == "done", "mixed down it fits"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"ASR_PRELOAD": "0", "REDIS_URL": ""}) as live:
        yield live


def test_deepgram_pre_recorded_multichannel_answers_one_channel_per_channel(server, two_talkers):
    audio, references = two_talkers
    tenant = make_tenant("deepgram-multichannel-file")
    ws = server.http_url.replace("http", "ws", 1)
    environment = DeepgramClientEnvironment(base=server.http_url, production=ws, agent=ws, agent_rest=server.http_url)
    client = DeepgramClient(environment=environment, api_key=tenant.raw_key, max_retries=0, timeout=300)

    response = client.listen.v1.media.transcribe_file(request=audio, model="nova-3", multichannel=True, utterances=True)

    channels = response.results.channels
    assert len(channels) == 2
    for channel in (0, 1):
        transcript = channels[channel].alternatives[0].transcript
        assert word_error_rate([references[channel]], [transcript]) <= 0.15, (channel, transcript)
    utterances = response.results.utterances or []
    assert {u.channel for u in utterances} == {0, 1}
    assert [u.start for u in utterances] == sorted(u.start for u in utterances)
    assert response.metadata.channels == 2 and response.metadata.duration == pytest.approx(DURATION_S, abs=0.05)
    session = Session.objects.get(pk=response.metadata.request_id, tenant=tenant.tenant)
    assert session.channels == 2 and session.audio_seconds == pytest.approx(2 * DURATION_S, abs=0.05)
    assert set(session.segments.values_list("channel", flat=True)) == {0, 1}
