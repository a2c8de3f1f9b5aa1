"""A session's recent finals as the decoder's context, and the check that it did not just repeat them.

Each final is decoded on its own: a slow reading cut into short utterances loses the sentence
around each one ("until the… // of the present frequencies"). Whisper takes the text before the
audio as a prompt; the session's last finals are that text. On noise or silence a prompted
Whisper may say the prompt again, so a result found inside the context is decoded once more
without it.
"""

import re

from transcription.engine.text import has_cjk

CONTEXT_CHARS = 200  # of spaced text: ~40 words, ~50 tokens
CONTEXT_CJK_CHARS = 80  # a Chinese character is a token or two; Whisper keeps at most 223 prompt tokens
MIN_ECHO_UNITS = 3  # shorter results ("Yes.", "OK") are often said twice for real
TRAILING_OFF = re.compile(r"(?:\s*(?:\.|…)){2,}")  # ". . ." and "...": a final that trailed off


def _units(text: str) -> list[str]:
    """Words (lower case, letters and digits only); characters for Chinese and Japanese."""
    if has_cjk(text):
        return [ch for ch in text if ch.isalnum()]
    return [w for w in (re.sub(r"[^\w]", "", w.lower()) for w in text.split()) if w]


def echoes(text: str, context: str) -> bool:
    """Whether ``text`` is only a stretch of ``context``, as a prompted decode of noise makes it."""
    said, before = _units(text), _units(context)
    n = len(said)
    if n < MIN_ECHO_UNITS or n > len(before):
        return False
    return any(before[i : i + n] == said for i in range(len(before) - n + 1))


def shares_phrase(text: str, context: str, units: int = 3) -> bool:
    """Whether ``text`` says a run of ``units`` words (characters in Chinese) of ``context``: the
    context may have pulled the decoder ("go forward ten meters" after a list of cards came out as
    "10, 4, 5. 8 of spades." with base), or the speaker said it again."""
    said, before = _units(text), _units(context)
    seen = {tuple(before[i : i + units]) for i in range(len(before) - units + 1)}
    return any(tuple(said[i : i + units]) in seen for i in range(len(said) - units + 1))


class Context:
    """The session's recent finals, in one language, trimmed at the front."""

    def __init__(self) -> None:
        self.text = ""
        self.language: str | None = None

    def remember(self, final: str, language: str | None) -> None:
        final = TRAILING_OFF.sub("", final).strip()  # "until the . . ." would teach the decoder to trail off
        if not final or not any(ch.isalnum() for ch in final):
            return
        if language != self.language:  # a prompt in another language would pull the decoder there
            self.text, self.language = "", language
        joined = f"{self.text}{final}" if has_cjk(final) else f"{self.text} {final}".strip()
        limit = CONTEXT_CJK_CHARS if has_cjk(joined) else CONTEXT_CHARS
        if len(joined) > limit:
            joined = joined[-limit:]
            space = joined.find(" ")
            joined = joined[space + 1 :] if 0 <= space < limit // 2 else joined  # no half word first
        self.text = joined

    def prompt(self, client_prompt: str, language: str | None) -> str:
        """The client's prompt, then the context when it is in the language being decoded."""
        if not self.text or (language is not None and language != self.language):
            return client_prompt
        return f"{client_prompt.strip()} {self.text}".strip()
