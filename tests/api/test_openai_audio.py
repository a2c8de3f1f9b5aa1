"""OpenAI's audio API, driven by the official `openai` SDK, unmodified, against the real server."""

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import openai
import pytest
from openai import OpenAI

from accounts.models import Tenant
from bench.evaluation import load_manifest, word_error_rate
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import FileTranscription, Session

CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")

pytestmark = pytest.mark.django_db(transaction=True)


def _english(text: str) -> bool:
    """Text a translation into English gives: words in Latin letters, not a Chinese character."""
    words = re.findall(r"[^\W\d_]+", text)
    return len(words) >= 3 and not CJK.search(text) and sum(w.isascii() for w in words) >= 0.9 * len(words)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"ASR_PRELOAD": "0", "REDIS_URL": ""}) as live:
        yield live


@pytest.fixture(scope="module")
def jfk(eval_dir):
    return next(e for e in load_manifest(eval_dir / "real") if e.audio_path.name == "jfk.wav")


@pytest.fixture(scope="module")
def gates(eval_dir):
    """62 s of continuous speech: a file long enough to be seen in progress."""
    return next(e for e in load_manifest(eval_dir / "long") if e.audio_path.name == "gates-ted.wav")


@pytest.fixture(scope="module")
def mandarin(eval_dir, whisper_base):
    """The Mandarin clips; translating them needs the multilingual model (``base``) installed."""
    return {e.audio_path.name: e for e in load_manifest(eval_dir / "zh")}


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


def test_a_stream_shows_the_file_job_s_progress_and_its_deltas_are_the_stored_transcript(client, tenant, gates):
    deltas, done, status_at_first_delta = [], None, None
    with open(gates.audio_path, "rb") as audio:
        for event in client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True):
            if event.type == "transcript.text.delta":
                if status_at_first_delta is None:
                    status_at_first_delta = FileTranscription.objects.get(tenant=tenant.tenant).status
                deltas.append(event.delta)
            else:
                assert event.type == "transcript.text.done" and done is None
                done = event
    assert status_at_first_delta == FileTranscription.Status.RUNNING  # a delta came while the job still ran
    assert done is not None and len(deltas) >= 3
    assert "".join(deltas) == done.text
    session = Session.objects.get(tenant=tenant.tenant)
    assert session.protocol == "openai" and session.status == "closed"
    assert " ".join(s.text.strip() for s in session.segments.order_by("index") if s.text.strip()) == done.text
    assert word_error_rate([gates.text], [done.text]) <= 0.3
    assert done.usage is not None and done.usage.type == "duration" and done.usage.seconds == 62


def test_an_error_mid_stream_is_raised_by_the_sdk(client, tenant, gates):
    deltas = []
    with pytest.raises(openai.APIError) as error, open(gates.audio_path, "rb") as audio:
        for event in client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True):
            if event.type == "transcript.text.delta" and not deltas:
                Tenant.objects.filter(pk=tenant.tenant.pk).update(is_active=False)  # suspended mid-job
            deltas.append(event)
    assert deltas and error.value.code == "forbidden" and "suspended" in error.value.message
    assert FileTranscription.objects.get(tenant=tenant.tenant).status == FileTranscription.Status.FAILED


def test_a_stream_with_a_bad_key_is_refused_before_it_starts(server, jfk):
    bad_key = OpenAI(base_url=f"{server.http_url}/v1", api_key="asr_nope_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused, open(jfk.audio_path, "rb") as audio:
        bad_key.audio.transcriptions.create(model="whisper-1", file=audio, stream=True)
    assert refused.value.code == "invalid_api_key"  # OpenAI's error shape, from the edge that refused it


def test_a_stream_of_subtitles_is_refused_with_a_reason(client, jfk):
    with pytest.raises(openai.BadRequestError) as refused, open(jfk.audio_path, "rb") as audio:
        client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True, response_format="srt")
    assert "stream" in refused.value.message


def test_a_translation_of_mandarin_speech_is_english(client, tenant, mandarin):
    texts = {}
    for name in ("asr_example.wav", "long.wav"):
        with open(mandarin[name].audio_path, "rb") as audio:
            texts[name] = client.audio.translations.create(model="whisper-1", file=audio).text
    assert all(_english(text) for text in texts.values()), texts
    assert "welcome" in texts["asr_example.wav"].lower()  # 欢迎
    assert "50" in texts["long.wav"] or "fifty" in texts["long.wav"].lower()  # 百分之五十
    sessions = Session.objects.filter(tenant=tenant.tenant)
    assert {(s.protocol, s.engine) for s in sessions} == {("openai", "base")}  # whisper-1 here is tiny.en


def test_translations_come_in_every_response_format(client, mandarin):
    clip = mandarin["asr_example.wav"]
    results = {}
    for response_format in ("json", "text", "srt", "vtt", "verbose_json"):
        with open(clip.audio_path, "rb") as audio:
            results[response_format] = client.audio.translations.create(
                model="whisper-1", file=audio, response_format=response_format
            )
    text = results["json"].text
    assert _english(text) and results["text"].strip() == text
    assert results["srt"].startswith("1\n00:00:0") and text.split()[0] in results["srt"]
    assert results["vtt"].startswith("WEBVTT\n\n00:00:0") and text.split()[0] in results["vtt"]
    verbose = results["verbose_json"]
    assert verbose.language == "english" and verbose.text == text and verbose.segments
    assert verbose.model_extra["task"] == "translate"


def test_translation_refusals_say_why(client, mandarin):
    for careless, reason in (({"model": "tiny.en"}, "cannot translate"), ({"response_format": "mp4"}, "response")):
        with pytest.raises(openai.BadRequestError) as refused, open(mandarin["mid.wav"].audio_path, "rb") as audio:
            client.audio.translations.create(**{"model": "whisper-1", "file": audio, **careless})
        assert reason in refused.value.message


@pytest.mark.parametrize("endpoint", ["transcriptions", "translations"])
def test_a_form_without_a_file_gets_openai_s_400(server, tenant, endpoint):
    request = urllib.request.Request(
        f"{server.http_url}/v1/audio/{endpoint}",
        data=urllib.parse.urlencode({"model": "whisper-1"}).encode(),
        headers={"Authorization": f"Bearer {tenant.raw_key}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    body = json.loads(refused.value.read())
    assert refused.value.code == 400 and set(body) == {"error"}
    assert body["error"]["type"] == "invalid_request_error" and "file" in body["error"]["message"]
