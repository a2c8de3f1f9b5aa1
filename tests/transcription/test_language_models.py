"""The model follows the language: ``ASR_LANGUAGE_MODELS`` picks the model of a start that names a
language but no model, in every protocol, checked when a process starts.

Real models (tiny.en, Whisper base), real Mandarin and English clips from ../shared/eval, the real
ASGI application and PostgreSQL; the start-up check runs in a real child process.
"""

import subprocess
import sys

import pytest

from bench.evaluation import character_error_rate, concatenate_clips, load_manifest, word_error_rate
from tests.support.audio import to_s16
from tests.support.paths import REPO
from tests.support.servers import child_env
from tests.support.ws import Transcript, communicator, read_until_closed, send_audio, send_json
from transcription.engine.config import ConfigError, SessionDefaults, SessionLimits, parse_start
from transcription.engine.languages import LanguageModelsError, model_for_language, parse_language_models
from transcription.engine.registry import ModelInfo
from transcription.engine_settings import session_limits
from transcription.gateway.protocols import deepgram, funasr
from transcription.gateway.protocols.openai_realtime import TranscriptionSettings
from transcription.models import Session

LOOSE_CER = 0.2


def whisper(name: str, languages: tuple[str, ...], *, available: bool = True) -> ModelInfo:
    return ModelInfo(name, "whisper", f"/models/{name}", languages, "en", 1, "cpu", available, word_timestamps=True)


TINY = whisper("tiny.en", ("en",))
BASE = whisper("base", ("auto", "en", "zh", "de"))
SENSEVOICE = ModelInfo("sensevoice-small", "sensevoice", "/m/sv", ("auto", "zh", "en", "yue"), "auto", 1, "cpu", True)


# --- the setting and the choice, without a server -------------------------------------------------


def test_the_setting_is_parsed_in_order_and_malformed_entries_are_refused_with_the_entry():
    assert parse_language_models(" en = tiny.en , *=base,") == (("en", "tiny.en"), ("*", "base"))
    assert parse_language_models("") == ()
    for text, fragment in [
        ("zh", "'zh' is not LANGUAGE=MODEL"),
        ("zh=", "'zh=' is not LANGUAGE=MODEL"),
        ("Chinese=base", "'Chinese' is not a language code"),
        ("en=tiny.en,en=base", "names 'en' twice"),
    ]:
        with pytest.raises(LanguageModelsError, match=fragment):
            parse_language_models(text)


def test_a_language_gets_its_entry_else_the_star_entry_else_the_default_else_the_first_that_speaks_it():
    mapping = (("en", "tiny.en"), ("*", "base"))
    models = (TINY, BASE, SENSEVOICE)
    assert model_for_language("en", mapping, models, "tiny.en") is TINY
    assert model_for_language("zh", mapping, models, "tiny.en") is BASE
    assert model_for_language("auto", mapping, models, "tiny.en") is BASE
    assert model_for_language("yue", mapping, models, "tiny.en") is SENSEVOICE  # base does not speak it
    assert model_for_language("zh", (("zh", "sensevoice-small"),), models, "tiny.en") is SENSEVOICE
    assert model_for_language("klingon", mapping, models, "tiny.en") is None
    no_base = (TINY, whisper("base", (), available=False))
    assert model_for_language("zh", mapping, no_base, "tiny.en") is None


def limits(*models: ModelInfo, mapping=(("en", "tiny.en"), ("*", "base"))) -> SessionLimits:
    return SessionLimits(models=models, default_model="tiny.en", language_models=mapping)


def test_parse_start_picks_the_model_of_the_language_and_an_explicit_model_wins():
    catalogue = limits(TINY, BASE)
    chinese = parse_start({"language": "zh"}, catalogue)
    assert (chinese.model, chinese.language) == ("base", "zh")
    assert parse_start({"language": "en"}, catalogue).model == "tiny.en"
    assert parse_start({"language": "auto"}, catalogue).model == "base"
    assert parse_start({}, catalogue).model == "tiny.en"
    assert parse_start({"model": "base", "language": "en"}, catalogue).model == "base"
    with pytest.raises(ConfigError, match="'zh' is not available with model 'tiny.en'"):
        parse_start({"model": "tiny.en", "language": "zh"}, catalogue)


def test_tenant_defaults_sit_below_the_client_and_above_the_server_and_never_make_a_start_fail():
    catalogue = limits(TINY, BASE)
    mine = SessionDefaults(model="base", language="zh", endpointing_ms=500)
    config = parse_start({}, catalogue, defaults=mine)
    assert (config.model, config.language, config.endpointing_ms) == ("base", "zh", 500)
    config = parse_start({"language": "en", "endpointing_ms": 900}, catalogue, defaults=mine)
    assert (config.model, config.language, config.endpointing_ms) == ("base", "en", 900)  # base speaks en
    config = parse_start({"model": "tiny.en"}, catalogue, defaults=mine)
    assert (config.model, config.language) == ("tiny.en", "en")  # zh is not tiny.en's: its own language
    english_model = SessionDefaults(model="tiny.en")
    assert parse_start({"language": "zh"}, catalogue, defaults=english_model).model == "base"
    no_words = SessionDefaults(model="sensevoice-small")
    assert parse_start({}, limits(TINY, BASE, SENSEVOICE), defaults=no_words).model == "sensevoice-small"
    assert parse_start({"word_timestamps": True}, limits(TINY, BASE, SENSEVOICE), defaults=no_words).model == "tiny.en"
    gone = SessionDefaults(model="base", language="zh", endpointing_ms=99_999)
    config = parse_start({}, limits(TINY, whisper("base", (), available=False)), defaults=gone)
    assert (config.model, config.language, config.endpointing_ms) == ("tiny.en", "en", 800)


def test_the_final_model_is_the_clients_else_the_tenants_else_the_servers():
    small = whisper("small", ("auto", "en", "zh", "de"))
    catalogue = SessionLimits(models=(TINY, BASE, small), default_model="tiny.en", default_final_model="small")
    tenant = SessionDefaults(final_model="base")
    assert parse_start({}, catalogue).final_model == "small"
    assert parse_start({}, catalogue, defaults=tenant).final_model == "base"
    assert parse_start({"final_model": "small"}, catalogue, defaults=tenant).final_model == "small"
    assert parse_start({"final_model": ""}, catalogue, defaults=tenant).final_model == "base"
    on_base = parse_start({"model": "base", "language": "en"}, catalogue, defaults=tenant)
    assert on_base.final_model == ""  # the tenant's final model is the session's own: one pass, as asked
    assert parse_start({}, limits(TINY, BASE), defaults=tenant).final_model == "base"


def test_a_tenants_final_model_that_cannot_decode_the_session_gives_way_and_never_fails_a_start():
    small = whisper("small", ("auto", "en", "zh", "de"))
    with_server = SessionLimits(models=(TINY, BASE, small), default_model="tiny.en", default_final_model="small")
    english_only = SessionDefaults(final_model="tiny.en")
    chinese = parse_start({"model": "base", "language": "zh"}, with_server, defaults=english_only)
    assert (chinese.language, chinese.final_model) == ("zh", "small")  # to the server's
    no_server = SessionLimits(models=(TINY, BASE, SENSEVOICE), default_model="tiny.en")
    assert parse_start({"model": "base", "language": "zh"}, no_server, defaults=english_only).final_model == ""
    not_whisper = SessionDefaults(final_model="sensevoice-small")
    assert parse_start({"model": "base", "language": "en"}, no_server, defaults=not_whisper).final_model == ""
    on_sensevoice = parse_start({"model": "sensevoice-small"}, no_server, defaults=SessionDefaults(final_model="base"))
    assert on_sensevoice.final_model == ""  # only a Whisper session's finals can be decoded again
    gone = SessionDefaults(final_model="base")
    no_base = SessionLimits(models=(TINY, whisper("base", (), available=False)), default_model="tiny.en")
    assert parse_start({}, no_base, defaults=gone).final_model == ""
    assert parse_start({}, no_base, defaults=SessionDefaults(final_model="large-v9")).final_model == ""
    with pytest.raises(ConfigError, match="cannot decode the finals"):  # a client's own is still refused
        parse_start({"model": "base", "language": "zh", "final_model": "tiny.en"}, no_server, defaults=gone)


def test_every_protocol_leaves_a_foreign_model_name_to_the_language(whisper_base):
    server = session_limits()
    query = {"model": ["nova-3"], "language": ["zh-CN"], "encoding": ["linear16"], "sample_rate": ["16000"]}
    from_deepgram = deepgram.parse_query(query, server).options
    from_funasr = funasr.parse_first({"mode": "online", "svs_lang": "zh"}, funasr.Renderer()).options
    from_openai = TranscriptionSettings(model="gpt-4o-transcribe", language="zh").start_options(server)
    for options in (from_deepgram, from_funasr, from_openai):
        assert "model" not in options, options
        assert parse_start(options, server).model == "base"
    english = deepgram.parse_query({"model": ["nova-3"], "language": ["en-US"]}, server).options
    assert parse_start(english, server).model == "tiny.en"
    ours = deepgram.parse_query({"model": ["base"], "language": ["en"]}, server).options
    assert parse_start(ours, server).model == "base"


def test_entries_whose_model_is_not_installed_are_skipped(settings, tmp_path):
    settings.ASR_MODELS_DIR = tmp_path  # base is not installed there
    server = session_limits()
    assert server.language_models == (("en", "tiny.en"),)
    assert parse_start({"language": "en"}, server).model == "tiny.en"
    with pytest.raises(ConfigError, match="'zh' is not available with model 'tiny.en'"):
        parse_start({"language": "zh"}, server)


# --- the setting is checked when a process starts -------------------------------------------------


def django_setup_with(value: str) -> subprocess.CompletedProcess:
    env = child_env(ASR_LANGUAGE_MODELS=value, ASR_PRELOAD="0")
    code = "import django; django.setup(); print('started')"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_bad_setting_stops_a_process_at_start_with_a_clear_error_and_an_uninstalled_model_does_not(tmp_path):
    for value, fragment in [
        ("zh:base", "'zh:base' is not LANGUAGE=MODEL"),
        ("zh=large-v9", "unknown model 'large-v9'"),
        ("zh=tiny.en", "maps 'zh' to 'tiny.en', which does not speak it"),
    ]:
        refused = django_setup_with(value)
        assert refused.returncode != 0 and "ImproperlyConfigured" in refused.stderr, refused.stderr[-2000:]
        assert fragment in refused.stderr, refused.stderr[-2000:]
    started = django_setup_with("zh=sensevoice-small,en=tiny.en,*=base")  # no FunASR folder here: skipped
    assert started.returncode == 0 and "started" in started.stdout, started.stderr[-2000:]


# --- end to end through the gateway ---------------------------------------------------------------


async def stream(raw_key: str, start: dict, pcm: bytes = b"", *, timeout: float = 120) -> Transcript:
    comm = communicator(raw_key)
    connected, _ = await comm.connect()
    assert connected
    transcript = Transcript()
    try:
        await send_json(comm, {"type": "start", **start})
        if pcm:
            await send_audio(comm, pcm, transcript=transcript)
        await send_json(comm, {"type": "stop"})
        return await read_until_closed(comm, transcript, timeout=timeout)
    finally:
        await comm.disconnect(timeout=30)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_start_naming_only_chinese_gets_base_and_chinese_text(tenant_a, eval_dir, models_loaded, whisper_base):
    models_loaded.recognizer_for("base")
    entries = load_manifest(eval_dir / "zh")
    clips = concatenate_clips(entries, gap_s=1.5, lead_s=0.3, tail_s=1.5)
    transcript = await stream(tenant_a.raw_key, {"language": "zh", "interim_results": False}, to_s16(clips.audio))
    assert transcript.close_code == 1000, transcript.messages
    ready = transcript.messages[0]
    assert (ready["config"]["model"], ready["config"]["language"]) == ("base", "zh")
    finals = [f for f in transcript.finals if f["text"].strip()]
    assert finals and all(f["language"] == "zh" for f in finals), finals
    hypothesis = "".join(f["text"] for f in finals)
    cer = character_error_rate(["".join(e.text for e in entries)], [hypothesis])
    print(f"Mandarin through {{'language': 'zh'}}: CER {cer:.3f} over {len(entries)} clips: {hypothesis}")
    assert cer <= LOOSE_CER, (cer, hypothesis)
    assert (await Session.objects.aget(pk=ready["session_id"])).language == "zh"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_start_naming_english_gets_tiny_en_and_an_explicit_model_wins(
    tenant_a, eval_dir, models_loaded, whisper_base
):
    real = {e.name: e for e in load_manifest(eval_dir / "real")}
    entry = real["goforward.wav"]
    pcm = to_s16(concatenate_clips([entry], gap_s=0.0, lead_s=0.3, tail_s=1.5).audio)
    english = await stream(tenant_a.raw_key, {"language": "en", "interim_results": False}, pcm)
    assert english.messages[0]["config"]["model"] == "tiny.en"
    assert word_error_rate([entry.text], [" ".join(f["text"] for f in english.finals)]) <= 0.15
    explicit = await stream(tenant_a.raw_key, {"model": "base", "language": "en"})
    assert explicit.close_code == 1000 and explicit.messages[0]["config"]["model"] == "base"
    refused = await stream(tenant_a.raw_key, {"model": "tiny.en", "language": "zh"})
    assert refused.close_code == 4400 and "not available with model 'tiny.en'" in refused.error["message"]


@pytest.mark.django_db(transaction=True)
async def test_without_base_installed_english_still_streams_and_chinese_is_refused_naming_tiny_en(
    tenant_a, settings, tmp_path, models_loaded
):
    settings.ASR_MODELS_DIR = tmp_path
    english = await stream(tenant_a.raw_key, {"language": "en"})
    assert english.close_code == 1000 and english.messages[0]["config"]["model"] == "tiny.en"
    chinese = await stream(tenant_a.raw_key, {"language": "zh"})
    assert chinese.close_code == 4400 and chinese.error["code"] == "invalid_start"
    assert "'zh' is not available with model 'tiny.en'" in chinese.error["message"]
