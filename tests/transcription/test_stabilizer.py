"""Append-only interim text (FunASR online, OpenAI Realtime): agreed partials, and finals that go on from them."""

from bench.evaluation import load_manifest
from tests.support.audio import to_s16, wav_float32
from transcription.engine import SessionLimits, StreamingSession, parse_start
from transcription.engine.stabilizer import Shown, Stabilizer, continue_from


def feed(partials: list[str], final: str) -> tuple[list[str], str]:
    stabilizer = Stabilizer(agree=2)
    return [stabilizer.partial(p) for p in partials], stabilizer.final(final)


def test_only_words_two_partials_agree_on_are_sent_and_the_last_is_held_back():
    deltas, rest = feed(
        ["For", "For the", "For the first time", "For the first time in"], "For the first time in my life."
    )
    assert deltas == ["", "", "For", " the first"]
    assert "".join(deltas) + rest == "For the first time in my life."


def test_a_revised_word_is_never_sent_and_nothing_is_taken_back():
    deltas, rest = feed(["I scream", "I scream for", "Ice cream for", "Ice cream for every", "Ice cream for everyone"],
                        "Ice cream for everyone.")  # fmt: skip
    sent = "".join(deltas)
    assert not sent.startswith("I scream") and sent + rest == "Ice cream for everyone."


def test_a_final_that_changed_what_was_sent_still_gets_its_rest():
    deltas, rest = feed(
        ["Go forward ten", "Go forward ten meters", "Go forward ten meters now"], "Go forward 10 meters now."
    )
    assert "".join(deltas) == "Go forward ten"
    assert rest == " 10 meters now."  # what follows the shared part: the client cannot un-append "ten"


def test_chinese_goes_by_character_and_the_next_utterance_starts_afresh():
    stabilizer = Stabilizer(agree=2)
    deltas = [stabilizer.partial(p) for p in ["我们", "我们今天", "我们今天去", "我们今天去公园"]]
    assert "".join(deltas) == "我们今天" and stabilizer.final("我们今天去公园玩。") == "去公园玩。"
    assert stabilizer.partial("明天") == "" and stabilizer.partial("明天见") == "明"


def test_four_partials_must_agree_by_default():
    stabilizer = Stabilizer()
    deltas = [stabilizer.partial(p) for p in ["Go", "Go forward", "Go forward ten", "Go forward ten meters"]]
    assert deltas == ["", "", "", ""]  # only "Go" is common to all four, and the last agreed word waits
    assert stabilizer.partial("Go forward ten meters now") == "Go"


def test_what_was_shown_is_continued_and_a_final_that_strays_goes_on_from_it():
    shown = Shown()
    assert shown.partial("Go forward") == "Go forward" and shown.partial("Go forward ten") == " ten"
    assert shown.partial("Go") == ""  # never taken back
    assert shown.final("Go forward ten meters.") == " meters."
    assert continue_from("Go forward ten", "Go forward 10 meters.") == "Go forward ten 10 meters."
    assert continue_from("我们今天", "我们明天去") == "我们今天明天去"
    assert continue_from("", "Anything.") == "Anything."


def test_a_stable_partials_session_s_finals_go_on_from_what_its_partials_agreed(engine_models, eval_dir):
    """The engine forces the agreed text into the final (on real/ + long/, 6 of 49 finals otherwise
    changed a word already agreed); a client appending deltas then always ends with the final."""
    entry = next(e for e in load_manifest(eval_dir / "long") if e.audio_path.name == "gates-ted.wav")
    audio = wav_float32(entry.audio_path)[: 16000 * 32]
    engine = StreamingSession(parse_start({}, SessionLimits(), stable_partials=True), engine_models)
    shown, sent, finals, now = Shown(), "", 0, 0.0
    for i in range(0, len(audio), 1600):
        for final in engine.accept_audio(to_s16(audio[i : i + 1600])):
            assert (sent + shown.final(final.text)) == final.text.strip()
            finals, sent = finals + 1, ""
        now += 0.1
        if engine.partial_due(now) and (partial := engine.decode_partial(now)) is not None:
            assert partial.stable is not None and partial.text.startswith(partial.stable)
            sent += shown.partial(partial.stable)
    assert finals >= 3
