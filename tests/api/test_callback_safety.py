"""Callbacks that must survive or be refused: a pending one outlives its server, and a callback to a
private address is refused by a server with the default settings.

Each test starts its own servers and no other runs meanwhile: every server delivers every due
callback of the database, so a server left running would deliver (or refuse) the others' ones.
"""

import json
import time

import httpx
import pytest
from deepgram.errors import BadRequestError

from bench.evaluation import load_manifest
from tests.api.test_callbacks import SERVER_ENV, delivery_when_settled
from tests.api.test_deepgram_rest import deepgram_client
from tests.support.receiver import CallbackReceiver
from tests.support.servers import free_port, gateway_server
from tests.support.tenants import make_tenant
from transcription.models import FileTranscription, Session, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def goforward(eval_dir):
    return next(e for e in load_manifest(eval_dir / "real") if e.audio_path.name == "goforward.wav")


def test_a_pending_callback_is_delivered_by_the_next_server_after_a_restart(django_db_setup, goforward):
    tenant = make_tenant("callbacks-restart")
    port = free_port()  # nothing listens there yet: every attempt of the first server fails
    with gateway_server(extra_env={**SERVER_ENV, "ASR_WEBHOOK_MAX_ATTEMPTS": "100"}) as first:
        accepted = deepgram_client(first, api_key=tenant.raw_key).listen.v1.media.transcribe_file(
            request=goforward.audio_path.read_bytes(), callback=f"http://127.0.0.1:{port}/late"
        )
        deadline = time.monotonic() + 120
        while WebhookDelivery.objects.get(job_id=accepted.request_id).last_error == "":
            assert time.monotonic() < deadline, "the first server never tried the callback"
            time.sleep(0.2)
    assert FileTranscription.objects.get(pk=accepted.request_id).status == "done"
    delivery = WebhookDelivery.objects.get(job_id=accepted.request_id)
    assert delivery.status == "pending" and delivery.last_status_code is None and delivery.attempts >= 1
    with CallbackReceiver(port=port) as receiver, gateway_server(extra_env=SERVER_ENV):
        (callback,) = receiver.wait_for(1)
        assert json.loads(callback.body)["metadata"]["request_id"] == accepted.request_id
        delivered = delivery_when_settled(accepted.request_id)
    assert delivered.status == "delivered" and delivered.attempts == int(callback.headers["x-asr-attempt"]) >= 2


def test_without_the_allow_setting_a_private_callback_is_refused_with_400(django_db_setup, goforward):
    tenant = make_tenant("callbacks-strict")
    audio = goforward.audio_path.read_bytes()
    with gateway_server(extra_env={"ASR_PRELOAD": "0", "REDIS_URL": ""}) as strict:
        client = deepgram_client(strict, api_key=tenant.raw_key)
        for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/", "http://169.254.169.254/"):
            with pytest.raises(BadRequestError) as refused:
                client.listen.v1.media.transcribe_file(request=audio, callback=url)
            body = refused.value.body
            assert body["err_code"] == "BAD_CALLBACK" and "public addresses only" in body["err_msg"], url
        with pytest.raises(BadRequestError) as not_http:
            client.listen.v1.media.transcribe_file(request=audio, callback="file:///etc/passwd")
        assert "http://" in not_http.value.body["err_msg"]
        rest = httpx.post(
            f"{strict.http_url}/api/v1/transcriptions",
            headers={"Authorization": f"Bearer {tenant.raw_key}"},
            files={"file": ("goforward.wav", audio, "audio/wav")},
            data={"callback_url": "http://127.0.0.1:9/hook"},
        )
    assert rest.status_code == 400 and rest.json()["code"] == "bad_callback"
    assert not Session.objects.filter(tenant=tenant.tenant).exists()
