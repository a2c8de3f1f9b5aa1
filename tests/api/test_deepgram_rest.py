"""Deepgram's pre-recorded API, driven by the official `deepgram-sdk`, unmodified, against the real server."""

import hashlib
import json
import socket

import httpx
import pytest
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.errors import BadRequestError
from deepgram.types.listen_v1response import ListenV1Response

from accounts.models import Tenant
from bench.evaluation import load_manifest, word_error_rate
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import FileTranscription, Session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"ASR_PRELOAD": "0", "REDIS_URL": ""}) as live:
        yield live


@pytest.fixture(scope="module")
def jfk(eval_dir):
    return next(e for e in load_manifest(eval_dir / "real") if e.audio_path.name == "jfk.wav")


@pytest.fixture
def tenant(server):
    return make_tenant("deepgram-sdk")


def deepgram_client(server, **credentials) -> DeepgramClient:
    """The SDK pointed at our server: Deepgram's environment with our addresses."""
    ws = server.http_url.replace("http", "ws", 1)
    environment = DeepgramClientEnvironment(base=server.http_url, production=ws, agent=ws, agent_rest=server.http_url)
    return DeepgramClient(environment=environment, max_retries=0, timeout=300, **credentials)


@pytest.fixture
def client(server, tenant) -> DeepgramClient:
    return deepgram_client(server, api_key=tenant.raw_key)


def test_a_file_is_transcribed_as_deepgram_answers_and_stored_as_a_deepgram_session(client, tenant, jfk):
    audio = jfk.audio_path.read_bytes()
    response = client.listen.v1.media.transcribe_file(
        request=audio, model="nova-3", smart_format=True, punctuate=True, utterances=True, keyterm=["Americans"]
    )
    assert isinstance(response, ListenV1Response)
    alternative = response.results.channels[0].alternatives[0]
    assert word_error_rate([jfk.text], [alternative.transcript]) <= 0.15
    words = alternative.words or []
    assert len(words) >= 15 and all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
    assert all(w.word == w.word.lower() and w.confidence is not None and 0 <= w.confidence <= 1 for w in words)
    assert {getattr(w, "punctuated_word", None) for w in words} != {None}
    metadata = response.metadata
    assert metadata.sha256 == hashlib.sha256(audio).hexdigest()
    assert metadata.duration == pytest.approx(11.0, abs=0.05) and metadata.channels == 1
    assert metadata.models and metadata.models[0] in metadata.model_info
    utterances = response.results.utterances or []
    assert utterances and " ".join(u.transcript for u in utterances) == alternative.transcript
    session = Session.objects.get(pk=metadata.request_id, tenant=tenant.tenant)
    assert session.protocol == "deepgram" and session.source == "file" and session.status == "closed"
    assert FileTranscription.objects.get(pk=metadata.request_id).status == "done"


def test_a_bad_key_is_a_401_and_a_bearer_key_is_taken_too(server, tenant, jfk):
    bad = deepgram_client(server, api_key="asr_000000000000_nope")
    with pytest.raises(ApiError) as refused:
        bad.listen.v1.media.transcribe_file(request=jfk.audio_path.read_bytes())
    assert refused.value.status_code == 401 and refused.value.body["err_code"] == "UNAUTHENTICATED"
    # The SDK's access_token sends "Authorization: bearer <key>": authenticated, then refused for diarize.
    bearer = deepgram_client(server, access_token=tenant.raw_key)
    with pytest.raises(BadRequestError):
        bearer.listen.v1.media.transcribe_file(request=jfk.audio_path.read_bytes(), diarize=True)
    assert not Session.objects.exists()


def test_an_exhausted_quota_is_a_402_and_stores_nothing(client, tenant, jfk):
    Tenant.objects.filter(pk=tenant.tenant.pk).update(monthly_audio_seconds_quota=0)
    with pytest.raises(ApiError) as refused:
        client.listen.v1.media.transcribe_file(request=jfk.audio_path.read_bytes())
    assert refused.value.status_code == 402 and refused.value.body["err_code"] == "QUOTA_EXCEEDED"
    assert not Session.objects.filter(tenant=tenant.tenant).exists()


def test_what_we_cannot_honour_is_a_clear_400(client, jfk):
    audio = jfk.audio_path.read_bytes()
    with pytest.raises(BadRequestError) as diarize:
        client.listen.v1.media.transcribe_file(request=audio, diarize=True)
    assert diarize.value.status_code == 400 and "diarize" in diarize.value.body["err_msg"]
    for unsupported in ({"summarize": "v2"}, {"redact": "pci"}, {"sentiment": True}):
        with pytest.raises(BadRequestError) as refused:
            client.listen.v1.media.transcribe_file(request=audio, **unsupported)
        assert next(iter(unsupported)) in refused.value.body["err_msg"]
    with pytest.raises(BadRequestError) as remote:
        client.listen.v1.media.transcribe_url(url="https://example.com/meeting.wav")
    assert "Remote URLs are not supported" in remote.value.body["err_msg"]
    with pytest.raises(BadRequestError) as not_audio:
        client.listen.v1.media.transcribe_file(request=b"not audio at all " * 100)
    assert not_audio.value.body["err_code"] in ("BAD_AUDIO", "UNSUPPORTED_FORMAT")
    assert not Session.objects.exists()


def test_another_tenant_cannot_see_the_job(client, server, tenant, jfk):
    response = client.listen.v1.media.transcribe_file(request=jfk.audio_path.read_bytes(), model="tiny.en")
    request_id = response.metadata.request_id
    other = make_tenant("deepgram-other")
    for path in (f"/api/v1/transcriptions/{request_id}", f"/api/v1/sessions/{request_id}"):
        mine = httpx.get(server.http_url + path, headers={"Authorization": f"Bearer {tenant.raw_key}"})
        theirs = httpx.get(server.http_url + path, headers={"Authorization": f"Bearer {other.raw_key}"})
        assert mine.status_code == 200 and theirs.status_code == 404
    assert mine.json()["protocol"] == "deepgram"


def test_a_body_over_the_limit_is_refused_in_deepgram_s_shape_before_it_is_read(server, tenant):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/listen HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
            b"Authorization: Token " + tenant.raw_key.encode() + b"\r\nContent-Length: 99999999999\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and json.loads(body)["err_code"] == "TOO_LARGE"
