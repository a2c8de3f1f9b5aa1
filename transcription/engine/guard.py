"""What the decoder must not pass on, and how sure it was of what it does.

- A phrase said again and again is Whisper looping ("Welcome to the video to the video …"): it is
  kept once.
- A short result from a window Whisper itself thinks holds no speech is what it says over noise
  ("Thank you.", "you"), and so is its prompt said again: dropped. Whisper's own rule drops a
  result only when its log-probability is low too, which these pass.
- ``confidence``: the exponential of the decoder's mean token log-probability, in [0, 1].

The recognizer applies :func:`check` to each decode and counts a final's suppressions by reason
in ``asr_suppressed_outputs_total``.
"""

import math
import re

from transcription.engine.context import echoes
from transcription.engine.text import has_cjk

NO_SPEECH_PROB = 0.6  # Whisper's own threshold for "this window is not speech"
MAX_STOCK_UNITS = 4  # results this short from a "no speech" window are dropped ("Thank you very much.")
MAX_LOOP_UNITS = 8  # the longest phrase looked for as a loop
# Repeats that make a loop: a word said five times running, a phrase of two four times, longer
# ones three times ("no, no, no, no" and "thank you, thank you" are speech).
LOOP_REPEATS = {1: 5, 2: 4}
DEFAULT_LOOP_REPEATS = 3


def _split(text: str) -> list[str]:
    """Units with what follows them (spaces kept): characters for Chinese, else words."""
    if has_cjk(text):
        return list(text)
    return re.findall(r"\S+\s*", text)


def _key(unit: str) -> str:
    """A unit as compared: its letters and digits in lower case, or the mark itself when it has none."""
    return re.sub(r"[^\w]", "", unit.lower()) or unit.strip()


def _loop_at(keys: list[str], i: int) -> tuple[int, int] | None:
    """(phrase length, repeats) of a loop starting at unit ``i``, if one does."""
    for n in range(1, MAX_LOOP_UNITS + 1):
        phrase = keys[i : i + n]
        if len(phrase) < n:
            return None
        repeats = 1
        while keys[i + repeats * n : i + (repeats + 1) * n] == phrase:
            repeats += 1
        if repeats >= LOOP_REPEATS.get(n, DEFAULT_LOOP_REPEATS):
            return n, repeats
    return None


def cut_loops(text: str) -> str:
    """``text`` with every run of a repeated phrase kept once."""
    units = _split(text)
    keys = [_key(u) for u in units]
    out: list[str] = []
    i = 0
    while i < len(units):
        loop = _loop_at(keys, i)
        if loop is None:
            out.append(units[i])
            i += 1
        else:
            n, repeats = loop
            i += n * repeats
            out += units[i - n : i]  # the last time round keeps what ends the sentence
    return "".join(out).strip()


def is_stock_phrase(text: str, no_speech_prob: float, prompt: str = "") -> bool:
    """What Whisper says over a window it judged silent: a short phrase, or its prompt again."""
    if no_speech_prob <= NO_SPEECH_PROB:
        return False
    units = [u for u in _split(text) if re.sub(r"[^\w]", "", u)]
    return 0 < len(units) <= MAX_STOCK_UNITS or (bool(prompt) and echoes(text, prompt))


def confidence(avg_logprob: float) -> float:
    return round(min(max(math.exp(avg_logprob), 0.0), 1.0), 3)


def check(text: str, no_speech_prob: float, prompt: str = "") -> tuple[str, str | None]:
    """The text to pass on, and why it was changed (None: it was not). ``prompt``: the decode's."""
    if not text:
        return text, None
    if not any(ch.isalnum() for ch in text):  # ". . ." is no transcript
        return "", "no_speech"
    if is_stock_phrase(text, no_speech_prob, prompt):
        return "", "no_speech"
    looped = cut_loops(text)
    return (looped, "repetition") if looped != text.strip() else (text, None)
