"""The hallucination guard: loops cut, noise's stock phrases dropped, confidence on finals."""

import numpy as np
import pytest

from tests.support.audio import to_s16
from tests.transcription.streaming import eval_clip
from transcription import instruments
from transcription.engine import SessionLimits, StreamingSession, parse_start
from transcription.engine.guard import check, confidence, cut_loops

READING = "I am recording the sound of my speaking voice and I am going to play it back into the room again and again."


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("Welcome to the video to the video to the video to the video.", "Welcome to the video."),
        ("the the the the the the end", "the end"),
        ("我们我们我们我们我们好", "我们好"),
        ("no, no, no, no, I said", "no, no, no, no, I said"),  # speech repeats a word a few times
        ("thank you thank you", "thank you thank you"),
        ("Go forward ten meters.", "Go forward ten meters."),
    ],
)
def test_a_loop_is_kept_once_and_speech_that_repeats_a_little_is_kept_whole(said, kept):
    assert cut_loops(said) == kept


def test_a_short_result_from_a_window_whisper_thinks_silent_is_dropped():
    assert check("Thank you.", 0.86) == ("", "no_speech")
    assert check("Thank you.", 0.05) == ("Thank you.", None)
    assert check("Go forward ten meters and turn left.", 0.9) == ("Go forward ten meters and turn left.", None)
    assert confidence(0.0) == 1.0 and 0 < confidence(-0.3) < 1


def test_what_a_prompted_whisper_says_over_silence_and_hum_is_suppressed(engine_models):
    """tiny.en prompted with a reading says "Thank you." over silence, and "Thank you very much." or
    the prompt again over mains hum, with a log-probability Whisper's own rule lets through."""
    recognizer = StreamingSession(parse_start({}, SessionLimits()), engine_models).recognizer
    hum = (0.05 * np.sin(2 * np.pi * 120 * np.arange(32000) / 16000)).astype(np.float32)
    for audio in (np.zeros(32000, np.float32), hum):
        for fit_window in (True, False):
            result = recognizer.recognize(audio, language="en", prompt=READING, fit_window=fit_window)
            assert check(result.text, result.no_speech_prob, READING)[0] == ""


def test_finals_carry_a_confidence_and_suppressions_are_counted(engine_models, eval_dir):
    _, audio = eval_clip(eval_dir, "jfk.wav", trailing_silence_s=1.5)
    engine = StreamingSession(parse_start({"sample_rate": 16000}, SessionLimits()), engine_models)
    finals = []
    for i in range(0, len(audio), 1600):
        finals += engine.accept_audio(to_s16(audio[i : i + 1600]))
    assert finals and all(0.3 < f.confidence <= 1 for f in finals)
    assert finals[0].to_message()["confidence"] == finals[0].confidence

    hum = (0.05 * np.sin(2 * np.pi * 120 * np.arange(32000) / 16000)).astype(np.float32)
    engine.stream.config = parse_start({"prompt": READING, "context": False}, SessionLimits())
    raw = engine.recognizer.recognize(hum, language="en", prompt=READING, fit_window=False)
    assert raw.text, "tiny.en says something over prompted hum: what the guard is for"
    before = instruments.SUPPRESSED.labels(reason="no_speech")._value.get()
    assert engine.stream.decode(hum, utterance=0, final=True, beam_size=None).text == ""  # a short final: 30 s window
    assert instruments.SUPPRESSED.labels(reason="no_speech")._value.get() == before + 1


def test_a_run_of_dots_is_a_loop_and_dots_alone_are_no_transcript():
    assert cut_loops("With perhaps the exception of . . . . . . . . . . . .") == "With perhaps the exception of ."
    assert check(". . . . . . . .", 0.1) == ("", "no_speech")
