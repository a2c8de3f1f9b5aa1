"""Two-pass finals: partials from the session's model, each final decoded by another (ASR_FINAL_MODEL
or a start's final_model)."""

from dataclasses import replace

import pytest

from tests.support.audio import to_s16
from tests.transcription.streaming import eval_session
from transcription.engine import ConfigError, StreamingSession, parse_start
from transcription.engine_settings import session_limits

pytestmark = pytest.mark.usefixtures("whisper_base")


def test_a_start_may_name_the_final_model_and_the_server_s_gives_way_where_it_cannot_serve(settings):
    limits = session_limits()
    assert parse_start({"final_model": "base"}, limits).final_model == "base"
    assert parse_start({"model": "base", "language": "en", "final_model": "base"}, limits).final_model == ""
    assert parse_start({}, limits).final_model == ""  # off by default
    with pytest.raises(ConfigError, match="Unknown model"):
        parse_start({"final_model": "large-v9"}, limits)
    with pytest.raises(ConfigError, match="must speak the language"):
        parse_start({"model": "base", "language": "zh", "final_model": "tiny.en"}, limits)
    server = replace(limits, default_final_model="base")
    assert parse_start({}, server).final_model == "base"
    assert parse_start({"language": "zh"}, server).final_model == ""  # base is already the session's model
    assert parse_start({"final_model": ""}, server).final_model == "base"
    assert "final_model" in parse_start({"final_model": "base"}, limits).public()


def _finals(config, models, audio) -> list[str]:
    engine = StreamingSession(config, models)
    finals = []
    for i in range(0, len(audio), 1600):
        finals += engine.accept_audio(to_s16(audio[i : i + 1600]))
    return [f.text for f in finals + engine.finalize("stop")]


def test_finals_are_the_final_model_s_and_partials_the_session_model_s(engine_models, eval_dir):
    session = eval_session(eval_dir, gap_s=1.5)
    audio = session.audio[: session.clips[5].end_sample + 24000]
    limits = session_limits()
    tiny = _finals(parse_start({"context": False}, limits), engine_models, audio)
    base = _finals(parse_start({"model": "base", "language": "en", "context": False}, limits), engine_models, audio)
    two_pass_config = parse_start({"final_model": "base", "context": False}, limits)
    assert _finals(two_pass_config, engine_models, audio) == base != tiny
    engine = StreamingSession(two_pass_config, engine_models)
    assert engine.stream is not engine.final_stream and engine.recognizer is engine_models.recognizer_for("tiny.en")


def test_a_confident_choice_needs_a_final_model_and_a_known_name():
    limits = session_limits()
    assert parse_start({"final_model": "base", "final_choice": "confident"}, limits).final_choice == "confident"
    assert parse_start({"final_model": "base"}, limits).final_choice == "final_model"
    with pytest.raises(ConfigError, match="needs a 'final_model'"):
        parse_start({"final_choice": "confident"}, limits)
    with pytest.raises(ConfigError, match="must be one of"):
        parse_start({"final_model": "base", "final_choice": "best"}, limits)
    server = replace(limits, default_final_model="base", default_final_choice="confident")
    assert parse_start({}, server).final_choice == "confident"
    assert parse_start({"language": "zh"}, server).final_choice == "final_model"  # one model: nothing to choose


def _scored_finals(config, models, audio) -> list[tuple[str, float]]:
    engine = StreamingSession(config, models)
    finals = []
    for i in range(0, len(audio), 1600):
        finals += engine.accept_audio(to_s16(audio[i : i + 1600]))
    return [(f.text, f.confidence or 0.0) for f in finals + engine.finalize("stop")]


def test_a_confident_final_is_the_decode_whisper_is_surer_of(engine_models, eval_dir):
    """Each final is tiny.en's or base's, whichever scored its own decode higher; both models win some."""
    session = eval_session(eval_dir, gap_s=1.5)
    audio = session.audio[: session.clips[9].end_sample + 24000]
    limits = session_limits()
    tiny = _scored_finals(parse_start({"context": False}, limits), engine_models, audio)
    base_config = parse_start({"model": "base", "language": "en", "context": False}, limits)
    base = _scored_finals(base_config, engine_models, audio)
    assert len(tiny) == len(base) >= 8
    expected = [t if t[1] >= b[1] else b for t, b in zip(tiny, base, strict=True)]
    confident = parse_start({"final_model": "base", "final_choice": "confident", "context": False}, limits)
    assert _scored_finals(confident, engine_models, audio) == expected
    assert expected != tiny and expected != base
