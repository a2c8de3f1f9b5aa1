"""The stabilizer that turns re-decoded partials into append-only deltas (FunASR online, OpenAI Realtime)."""

from transcription.gateway.protocols.stabilizer import Stabilizer


def feed(partials: list[str], final: str) -> tuple[list[str], str]:
    stabilizer = Stabilizer()
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
    stabilizer = Stabilizer()
    deltas = [stabilizer.partial(p) for p in ["我们", "我们今天", "我们今天去", "我们今天去公园"]]
    assert "".join(deltas) == "我们今天" and stabilizer.final("我们今天去公园玩。") == "去公园玩。"
    assert stabilizer.partial("明天") == "" and stabilizer.partial("明天见") == "明"
