"""The FunASR adapters' streaming contract, on the real funasr classes with random weights.

No FunASR weights can be downloaded here (see funasr_models.py), so what these tests establish is
the adapters' contract with FunASR's code, not recognition accuracy: the streaming Paraformer's
per-session cache, 600 ms chunking and final flush, isolation between sessions, the registry and
gateway wiring, and how SenseVoice's language tags are read. The text itself is meaningless.
"""

import numpy as np
import pytest

from bench.evaluation import load_manifest
from tests.support.audio import to_s16, wav_float32
from tests.support.ws import Transcript, communicator, read_until_closed, send_audio, send_json
from transcription.dispatch import get_dispatcher
from transcription.engine import SessionLimits, StreamingSession, parse_start
from transcription.engine.config import SessionConfig
from transcription.engine.funasr_adapters import (
    CHUNK_SAMPLES,
    ParaformerStream,
    ParaformerStreamingRecognizer,
    SenseVoiceRecognizer,
    parse_sensevoice,
)
from transcription.engine.models import ModelSettings, load_models, model_registry
from transcription.engine_settings import model_settings_from_django

from .funasr_models import make_paraformer_streaming, make_sensevoice_small


@pytest.fixture(scope="module")
def paraformer_dir(tmp_path_factory):
    return make_paraformer_streaming(tmp_path_factory.mktemp("funasr") / "paraformer-zh-streaming")


@pytest.fixture(scope="module")
def sensevoice_dir(tmp_path_factory):
    return make_sensevoice_small(tmp_path_factory.mktemp("funasr") / "SenseVoiceSmall")


@pytest.fixture(scope="module")
def paraformer(paraformer_dir):
    return ParaformerStreamingRecognizer(paraformer_dir, device="cpu")


@pytest.fixture(scope="module")
def speech(eval_dir):
    return [wav_float32(e.audio_path) for e in load_manifest(eval_dir / "zh")]


def stream_in_steps(stream: ParaformerStream, audio: np.ndarray, step: int, *, utterance: int = 0) -> list[str]:
    """Partials every ``step`` samples, then the final; returns every text the stream gave."""
    texts = [stream.decode(audio[:end], utterance=utterance, final=False, beam_size=None).text
             for end in range(step, len(audio), step)]  # fmt: skip
    texts.append(stream.decode(audio, utterance=utterance, final=True, beam_size=None).text)
    return texts


def test_paraformer_output_does_not_depend_on_how_the_audio_was_split(paraformer, speech):
    """Whole 600 ms chunks go to the model whatever the frame size, so the final is the same."""
    one_call = stream_in_steps(paraformer.open_stream(SessionConfig()), speech[0], len(speech[0]) + 1)
    finals = {
        step: stream_in_steps(paraformer.open_stream(SessionConfig()), speech[0], step)[-1]
        for step in (1600, 3200, 7000, CHUNK_SAMPLES)
    }
    assert one_call[-1] and set(finals.values()) == {one_call[-1]}, finals


def test_paraformer_partials_only_grow_and_the_final_extends_them(paraformer, speech):
    texts = stream_in_steps(paraformer.open_stream(SessionConfig()), speech[2], 1600)
    non_empty = [t for t in texts if t]
    assert len(set(non_empty)) > 2, "text arrives chunk by chunk"
    for earlier, later in zip(texts, texts[1:], strict=False):
        assert later.startswith(earlier), (earlier, later)


def test_paraformer_sessions_keep_separate_caches(paraformer, speech):
    alone_a = stream_in_steps(paraformer.open_stream(SessionConfig()), speech[0], 3200)
    alone_b = stream_in_steps(paraformer.open_stream(SessionConfig()), speech[1], 3200)
    a, b = paraformer.open_stream(SessionConfig()), paraformer.open_stream(SessionConfig())
    interleaved_a, interleaved_b = [], []
    for end in range(3200, max(len(speech[0]), len(speech[1])) + 3200, 3200):
        for stream, audio, out in ((a, speech[0], interleaved_a), (b, speech[1], interleaved_b)):
            if end < len(audio):
                out.append(stream.decode(audio[:end], utterance=0, final=False, beam_size=None).text)
            elif end - 3200 < len(audio):
                out.append(stream.decode(audio, utterance=0, final=True, beam_size=None).text)
    assert (interleaved_a, interleaved_b) == (alone_a, alone_b)


def test_paraformer_final_resets_the_cache_for_the_next_utterance(paraformer, speech):
    fresh = stream_in_steps(paraformer.open_stream(SessionConfig()), speech[1], 3200, utterance=50_000)
    reused = paraformer.open_stream(SessionConfig())
    stream_in_steps(reused, speech[0], 3200, utterance=0)
    assert stream_in_steps(reused, speech[1], 3200, utterance=50_000) == fresh
    # An utterance abandoned without a final (a new start sample) also starts clean.
    abandoned = paraformer.open_stream(SessionConfig())
    abandoned.decode(speech[0][:32000], utterance=0, final=False, beam_size=None)
    assert stream_in_steps(abandoned, speech[1], 3200, utterance=50_000) == fresh


def test_paraformer_final_with_nothing_new_still_flushes(paraformer, speech):
    stream = paraformer.open_stream(SessionConfig())
    audio = speech[0][: 4 * CHUNK_SAMPLES]
    partial = stream.decode(audio, utterance=0, final=False, beam_size=None).text
    final = stream.decode(audio, utterance=0, final=True, beam_size=None).text
    assert final.startswith(partial) and stream.utterance is None and stream.cache == {}


def test_paraformer_behind_the_vad_in_a_streaming_session(paraformer_dir, speech, engine_models):
    models = load_models(ModelSettings(funasr_dirs=(str(paraformer_dir),), default_model="paraformer-zh-streaming"))
    assert models.vad is engine_models.vad
    registry = models.registry()
    config = parse_start({}, SessionLimits(models=registry.models, default_model=registry.default))
    assert (config.model, config.language) == ("paraformer-zh-streaming", "zh")
    engine = StreamingSession(config, models)
    assert engine.stream.incremental
    audio = np.concatenate([np.zeros(8000, np.float32), speech[0], np.zeros(24000, np.float32), speech[1],
                            np.zeros(24000, np.float32)])  # fmt: skip
    finals, partials, now = [], [], 0.0
    for i in range(0, len(audio), 1600):
        finals += engine.accept_audio(to_s16(audio[i : i + 1600]))
        now += 0.1
        assert not engine.speculation_due(), "no speculative finals: a flushed cache cannot be taken back"
        if engine.partial_due(now):
            event = engine.decode_partial(now)
            partials += [event] if event else []
    finals += engine.finalize("stop")
    assert [f.segment for f in finals] == [0, 1] and all(f.reason == "vad" for f in finals)
    assert all(f.language == "zh" and f.text for f in finals)
    assert partials and all(p.segment in (0, 1) for p in partials)
    for p in partials:
        final = finals[p.segment]
        assert final.text.startswith(p.text), (p.text, final.text)


def test_sensevoice_language_tags_are_read_and_dropped():
    raw = "<|zh|><|NEUTRAL|><|Speech|><|withitn|>歡迎大家來體驗達摩院推出的語音識別模型。"
    result = parse_sensevoice(raw, requested=None)
    assert (result.text, result.language) == ("欢迎大家来体验达摩院推出的语音识别模型。", "zh")
    english = parse_sensevoice("<|en|><|NEUTRAL|><|Speech|><|withitn|>Ten of clubs.", requested=None)
    assert (english.text, english.language, english.language_probability) == ("Ten of clubs.", "en", 1.0)
    unknown = parse_sensevoice("<|nospeech|><|EMO_UNKNOWN|><|BGM|><|woitn|>", requested=None)
    assert (unknown.text, unknown.language_probability) == ("", 0.0)
    assert parse_sensevoice("<|en|>hello", requested="zh").language == "zh"


def test_sensevoice_adapter_runs_the_real_model_class_per_utterance(sensevoice_dir, speech):
    recognizer = SenseVoiceRecognizer(sensevoice_dir, device="cpu")
    zh = recognizer.open_stream(SessionConfig(language="zh"))
    first = zh.decode(speech[0], utterance=0, final=True, beam_size=None)
    assert first.language == "zh" and first.text and "<|" not in first.text
    assert zh.decode(speech[0], utterance=0, final=True, beam_size=None) == first, "deterministic per utterance"
    auto = recognizer.open_stream(SessionConfig(language="auto"))
    result = auto.decode(speech[0], utterance=0, final=True, beam_size=None)
    assert "<|" not in result.text
    assert auto.language.fixed == result.language, "auto follows the model's own language tag (if any)"


def test_the_registry_recognises_downloaded_funasr_folders(paraformer_dir, sensevoice_dir, tmp_path):
    settings = ModelSettings(funasr_dirs=(str(paraformer_dir), str(sensevoice_dir), str(tmp_path)))
    registry = model_registry(settings)
    paraformer, sensevoice = registry.get("paraformer-zh-streaming"), registry.get("sensevoice-small")
    assert paraformer.available and paraformer.languages == ("zh",) and not paraformer.word_timestamps
    assert sensevoice.available and sensevoice.languages == ("auto", "zh", "en", "yue", "ja", "ko")
    missing = registry.get(tmp_path.name)
    assert not missing.available and "config.yaml not found" in missing.detail


@pytest.mark.django_db(transaction=True)
async def test_a_session_can_ask_for_the_paraformer_through_the_gateway(
    tenant_a, settings, paraformer_dir, speech, engine_models, monkeypatch
):
    # As a server started with ASR_FUNASR_MODEL_DIR set: the gateway's catalogue and the engine agree.
    settings.ASR_FUNASR_MODEL_DIR = str(paraformer_dir)
    monkeypatch.setattr(get_dispatcher(), "model_settings", model_settings_from_django())
    comm = communicator(tenant_a.raw_key)
    await comm.connect()
    transcript = Transcript()
    try:
        await send_json(comm, {"type": "start", "model": "paraformer-zh-streaming"})
        pcm = to_s16(np.concatenate([speech[0], np.zeros(24000, np.float32)]))
        await send_audio(comm, pcm, transcript=transcript)
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, transcript, timeout=60)
    finally:
        await comm.disconnect(timeout=30)
    assert transcript.close_code == 1000, transcript.messages
    assert transcript.messages[0]["config"]["model"] == "paraformer-zh-streaming"
    assert transcript.finals and all(f["language"] == "zh" for f in transcript.finals)
    refused = communicator(tenant_a.raw_key)
    await refused.connect()
    await send_json(refused, {"type": "start", "model": "paraformer-zh-streaming", "word_timestamps": True})
    answer = await read_until_closed(refused, Transcript(), timeout=10)
    await refused.disconnect()
    assert answer.close_code == 4400 and "does not give word timestamps" in answer.error["message"]
