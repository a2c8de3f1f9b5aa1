"""Callbacks through the real server to a real receiver: Deepgram's ``callback=`` (official SDK) and
``callback_url`` on our REST API, signed and retried. Restarts and refused hosts: test_callback_safety.py."""

import hashlib
import hmac
import json
import time

import httpx
import pytest
from deepgram import DeepgramClient
from deepgram.types.listen_v1accepted_response import ListenV1AcceptedResponse
from deepgram.types.listen_v1response import ListenV1Response

from accounts import selectors as account_selectors
from bench.evaluation import load_manifest, word_error_rate
from tests.api.test_deepgram_rest import deepgram_client
from tests.support.receiver import CallbackReceiver, Received
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Session, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

QUICK_RETRIES = {"ASR_WEBHOOK_BACKOFF_S": "0.5", "ASR_WEBHOOK_BACKOFF_MAX_S": "2", "ASR_WEBHOOK_POLL_S": "0.2"}
SERVER_ENV = {"ASR_PRELOAD": "0", "REDIS_URL": "", "ASR_WEBHOOK_ALLOW_PRIVATE": "1", **QUICK_RETRIES}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env=SERVER_ENV) as live:
        yield live


@pytest.fixture(scope="module")
def clips(eval_dir):
    return {e.audio_path.name: e for e in load_manifest(eval_dir / "real")}


@pytest.fixture
def tenant(server):
    return make_tenant("callbacks")


@pytest.fixture
def client(server, tenant) -> DeepgramClient:
    return deepgram_client(server, api_key=tenant.raw_key)


def verified(secret: str, request: Received, *, tolerance_s: float = 300) -> bool:
    """The receiver's check, as the README gives it: HMAC-SHA256 of "<timestamp>.<body>", recent timestamp."""
    timestamp = request.headers["x-asr-timestamp"]
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    return fresh and hmac.compare_digest(f"sha256={digest}", request.headers["x-asr-signature"])


def delivery_when_settled(job_id, timeout: float = 30.0) -> WebhookDelivery:
    """The job's callback row once its last attempt is recorded (the receiver answers before that)."""
    deadline = time.monotonic() + timeout
    while True:
        delivery = WebhookDelivery.objects.get(job_id=job_id)
        if delivery.status != "pending" or time.monotonic() > deadline:
            return delivery
        time.sleep(0.1)


def test_a_deepgram_callback_arrives_signed_and_is_deepgram_s_response(client, tenant, clips):
    jfk = clips["jfk.wav"]
    with CallbackReceiver() as receiver:
        accepted = client.listen.v1.media.transcribe_file(
            request=jfk.audio_path.read_bytes(), callback=receiver.url, utterances=True
        )
        assert isinstance(accepted, ListenV1AcceptedResponse)
        (callback,) = receiver.wait_for(1)
    assert callback.method == "POST" and callback.path == "/hooks/asr?source=test"
    secret = account_selectors.webhook_secret_get(tenant_id=tenant.tenant.pk)
    assert secret and verified(secret, callback)
    assert not verified(secret, Received(callback.method, callback.path, callback.headers, callback.body + b" "))
    result = ListenV1Response.model_validate(json.loads(callback.body))
    assert result.metadata.request_id == accepted.request_id == callback.headers["x-asr-request-id"]
    assert word_error_rate([jfk.text], [result.results.channels[0].alternatives[0].transcript]) <= 0.15
    assert result.results.utterances
    delivery = delivery_when_settled(accepted.request_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None
    assert Session.objects.get(pk=accepted.request_id, tenant=tenant.tenant).protocol == "deepgram"


def test_a_receiver_that_fails_first_gets_the_callback_again(client, tenant, clips):
    with CallbackReceiver([500]) as receiver:
        accepted = client.listen.v1.media.transcribe_file(
            request=clips["goforward.wav"].audio_path.read_bytes(), callback=receiver.url, callback_method="PUT"
        )
        first, second = receiver.wait_for(2)
    secret = account_selectors.webhook_secret_get(tenant_id=tenant.tenant.pk)
    assert secret and verified(secret, first) and verified(secret, second)
    assert first.method == second.method == "PUT" and first.body == second.body
    assert (first.headers["x-asr-attempt"], second.headers["x-asr-attempt"]) == ("1", "2")
    delivery = delivery_when_settled(accepted.request_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)


def test_callback_url_on_the_rest_api_posts_the_finished_job_signed(server, tenant, clips):
    clip = clips["goforward.wav"]
    with CallbackReceiver() as receiver:
        with open(clip.audio_path, "rb") as audio:
            created = httpx.post(
                f"{server.http_url}/api/v1/transcriptions",
                headers={"Authorization": f"Bearer {tenant.raw_key}"},
                files={"file": ("goforward.wav", audio, "audio/wav")},
                data={"callback_url": receiver.url},
            )
        assert created.status_code == 202, created.text
        assert created.json()["callback"]["status"] == "pending"
        (callback,) = receiver.wait_for(1)
    secret = account_selectors.webhook_secret_get(tenant_id=tenant.tenant.pk)
    assert secret and verified(secret, callback)
    job = json.loads(callback.body)
    assert job["id"] == created.json()["id"] == callback.headers["x-asr-request-id"] and job["status"] == "done"
    stored = " ".join(s.text.strip() for s in Session.objects.get(pk=job["id"]).segments.order_by("index"))
    assert " ".join(s["text"].strip() for s in job["segments"]) == stored and stored
    delivery_when_settled(job["id"])
    shown = httpx.get(
        f"{server.http_url}/api/v1/transcriptions/{job['id']}", headers={"Authorization": f"Bearer {tenant.raw_key}"}
    ).json()["callback"]
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("delivered", 1, 200)
