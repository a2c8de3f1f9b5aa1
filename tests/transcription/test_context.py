"""Context across utterances: the session's recent finals prompt the decoder, guarded against echoes."""

import numpy as np

from bench.evaluation import word_error_rate
from tests.support.audio import silence, to_s16
from tests.transcription.streaming import eval_session
from transcription.engine import SessionLimits, StreamingSession, parse_start
from transcription.engine.context import CONTEXT_CHARS, Context, echoes, shares_phrase
from transcription.engine_settings import session_limits

READING = "I am recording the sound of my speaking voice and I am going to play it back into the room again and again."


def test_the_context_keeps_the_last_finals_of_one_language_whole_words_first():
    context = Context()
    for _ in range(6):
        context.remember(READING, "en")
    assert len(context.text) <= CONTEXT_CHARS and context.text.endswith("again and again.")
    assert context.text.split()[0] in READING.split()  # no half word at the front
    assert context.prompt("Names: Lucier.", "en") == f"Names: Lucier. {context.text}"
    assert context.prompt("Names: Lucier.", "zh") == "Names: Lucier."  # not a prompt for Chinese audio
    context.remember("我们今天去公园。", "zh")
    assert context.text == "我们今天去公园。" and context.prompt("", "zh") == "我们今天去公园。"


def test_an_echo_is_a_stretch_of_the_context_of_three_words_or_more():
    assert echoes("I am recording the sound.", READING)
    assert echoes("play it back into the room", READING)
    assert not echoes("Again.", READING)  # said twice for real, often
    assert not echoes("I am sitting in a room.", READING)


def test_hiss_after_a_reading_is_not_the_reading_again(engine_models):
    """A prompted tiny.en says the prompt on hiss; the stream hears such audio again without it."""
    config = parse_start({"sample_rate": 16000}, SessionLimits())
    engine = StreamingSession(config, engine_models)
    engine.stream.remember(READING, "en")
    hiss = (np.random.default_rng(0).standard_normal(32000) * 0.01).astype(np.float32)
    for final in (True, False):
        assert engine.stream.decode(hiss, utterance=0, final=final, beam_size=None).text == ""


def test_a_session_s_finals_become_its_context_unless_it_asks_for_none(engine_models, eval_dir):
    session = eval_session(eval_dir, gap_s=1.5)
    audio = np.concatenate([session.audio[: session.clips[2].end_sample], silence(1.5)])
    for asked, remembered in (({}, True), ({"context": False}, False)):
        engine = StreamingSession(parse_start({"sample_rate": 16000, **asked}, SessionLimits()), engine_models)
        finals = []
        for i in range(0, len(audio), 1600):
            finals += engine.accept_audio(to_s16(audio[i : i + 1600]))
        assert len(finals) >= 3
        context = engine.stream.context.text
        assert context.endswith(finals[-1].text) and finals[-2].text in context if remembered else context == ""


def test_the_server_chooses_the_default_and_a_start_overrides_it_either_way(settings):
    """ASR_CONTEXT turns the context off for sessions that do not ask; a start's choice wins."""
    for server, asked, expected in ((True, {}, True), (False, {}, False), (False, {"context": True}, True)):
        settings.ASR_CONTEXT = server
        assert parse_start(asked, session_limits()).context is expected
    settings.ASR_CONTEXT = True
    assert parse_start({"context": False}, session_limits()).context is False


def test_a_final_that_trailed_off_is_remembered_without_its_dots():
    """base, prompted with "Until the . . .", wrote ". . ." for 400 tokens on long/lucier-room."""
    context = Context()
    context.remember("Until the . . .", "en")
    context.remember(". . . .", "en")
    context.remember("With perhaps the exception of...", "en")
    assert context.text == "Until the With perhaps the exception of"


def test_a_final_that_says_a_phrase_of_the_context_is_weighed_against_the_audio_alone(engine_models, eval_dir):
    """base, prompted with a list of cards, heard "go forward ten meters" as "10, 4, 5. 8 of spades.":
    a final sharing three words with the context is decoded alone too, and the surer one kept."""
    assert shares_phrase("10, 4, 5. 8 of spades.", "8 of spades. 4 of clubs. 7 of hearts.")
    assert not shares_phrase("Go forward 10 meters.", "8 of spades. 4 of clubs. 7 of hearts.")
    session = eval_session(eval_dir, gap_s=1.0)
    names = [clip.name for clip in session.clips]
    goforward = session.clips[names.index("goforward.wav")]
    audio = np.concatenate([session.audio[: goforward.end_sample], silence(1.5)])
    config = parse_start({"model": "base", "language": "en"}, session_limits())
    engine = StreamingSession(config, engine_models)
    finals = []
    for i in range(0, len(audio), 1600):
        finals += engine.accept_audio(to_s16(audio[i : i + 1600]))
    last = [f.text for f in finals if f.end > goforward.start_s]
    assert word_error_rate([goforward.reference], [" ".join(last)]) <= 0.25, last
