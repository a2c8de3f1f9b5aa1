"""OpenAI's audio API, driven by the official `openai` SDK, unmodified, against the real server."""

import openai
import pytest
from openai import OpenAI

from accounts.models import Tenant
from bench.evaluation import load_manifest, word_error_rate
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import Session

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
    return make_tenant("openai-sdk")


@pytest.fixture
def client(server, tenant) -> OpenAI:
    return OpenAI(base_url=f"{server.http_url}/v1", api_key=tenant.raw_key, max_retries=0)


def test_a_transcription_is_the_file_job_s_text_and_is_stored_for_the_tenant(client, tenant, jfk):
    with open(jfk.audio_path, "rb") as audio:
        result = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert word_error_rate([jfk.text], [result.text]) <= 0.15
    assert result.usage is not None and result.usage.seconds == 11
    session = Session.objects.get(tenant=tenant.tenant)
    assert session.source == "file" and session.status == "closed" and session.audio_seconds == pytest.approx(11.0)
    assert " ".join(s.text.strip() for s in session.segments.order_by("index")) == result.text


def test_text_srt_and_vtt_come_as_openai_writes_them(client, jfk):
    texts = {}
    for response_format in ("text", "srt", "vtt"):
        with open(jfk.audio_path, "rb") as audio:
            texts[response_format] = client.audio.transcriptions.create(
                model="whisper-1", file=audio, response_format=response_format
            )
    assert word_error_rate([jfk.text], [texts["text"]]) <= 0.15
    assert texts["srt"].startswith("1\n00:00:0") and " --> " in texts["srt"] and "," in texts["srt"].split("\n")[1]
    assert texts["vtt"].startswith("WEBVTT\n\n00:00:0") and "." in texts["vtt"].split("\n")[2]


def test_verbose_json_has_segments_and_the_words_when_asked(client, jfk):
    with open(jfk.audio_path, "rb") as audio:
        result = client.audio.transcriptions.create(
            model="tiny.en",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert result.language == "english" and result.duration == pytest.approx(11.0, abs=0.05)
    assert result.segments and result.segments[0].start >= 0 and result.segments[-1].end <= 11.05
    words = result.words or []
    assert len(words) >= 15 and all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
    assert word_error_rate([jfk.text], [" ".join(w.word for w in words)]) <= 0.2


def test_refusals_come_in_openai_s_errors(client, server, tenant, jfk):
    bad_key = OpenAI(base_url=f"{server.http_url}/v1", api_key="asr_nope_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError), open(jfk.audio_path, "rb") as audio:
        bad_key.audio.transcriptions.create(model="whisper-1", file=audio)
    with pytest.raises(openai.BadRequestError) as not_audio:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"not audio at all " * 100))
    assert not_audio.value.body["code"] in ("bad_audio", "unsupported_format")
    with pytest.raises(openai.BadRequestError), open(jfk.audio_path, "rb") as audio:
        client.audio.transcriptions.create(model="no-such-model", file=audio)
    for careless in ({"response_format": "mp4"}, {"timestamp_granularities": ["char"]}, {"model": ""}):
        with pytest.raises(openai.BadRequestError), open(jfk.audio_path, "rb") as audio:
            client.audio.transcriptions.create(**{"model": "whisper-1", "file": audio, **careless})
    Tenant.objects.filter(pk=tenant.tenant.pk).update(monthly_audio_seconds_quota=0)
    with pytest.raises(openai.RateLimitError) as quota, open(jfk.audio_path, "rb") as audio:
        client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert quota.value.code == "insufficient_quota"
    assert not Session.objects.filter(tenant=tenant.tenant).exists()  # nothing stored for a refusal


def test_models_lists_ours_and_the_openai_names_for_the_default(client):
    names = {model.id for model in client.models.list()}
    assert {"tiny.en", "whisper-1", "gpt-4o-transcribe"} <= names
