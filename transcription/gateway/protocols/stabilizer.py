"""Append-only text from successive partial hypotheses, for protocols whose interim text is deltas.

Our partials re-decode the whole open utterance, so a later one may change earlier words. FunASR's
``2pass-online`` messages and OpenAI Realtime's ``delta`` events are appended by their clients and
never taken back: only what two partials in a row agree on is sent, and never again.
"""


def _by_character(text: str) -> bool:
    """Text whose units are characters, not space-separated words: Chinese, Japanese, Korean."""
    return any("\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in text)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def _whole_words(prefix: str, text: str) -> str:
    """``prefix`` of ``text`` cut back to a word boundary, so no half word is sent."""
    if len(prefix) == len(text) or _by_character(text):
        return prefix
    if text[len(prefix)].isspace():
        return prefix
    cut = prefix.rfind(" ")
    return prefix[:cut] if cut > 0 else ""


class Stabilizer:
    """One utterance's stable text: feed partials, get what may be appended now."""

    def __init__(self) -> None:
        self.sent = ""  # everything delivered so far for this utterance
        self.previous = ""

    def partial(self, text: str) -> str:
        """The delta this partial makes stable (often empty)."""
        text = text.strip()
        agreed = _whole_words(_common_prefix(self.previous, text), text)
        self.previous = text
        # The last agreed word may still change at the final (a comma after it, "Mr" to "Mr."), and so
        # may the last character of text without spaces: hold it back until more follows.
        if _by_character(text):
            agreed = agreed[:-1]
        else:
            agreed = agreed[: max(agreed.rfind(" "), 0)]
        if len(agreed) <= len(self.sent) or not agreed.startswith(self.sent):
            return ""
        delta, self.sent = agreed[len(self.sent) :], agreed
        return delta

    def final(self, text: str) -> str:
        """The rest of the utterance at its final, and a fresh start for the next one.

        When the final no longer begins with what was sent (a word changed late), the delta cannot
        take it back: the rest is what follows the longest part still shared.
        """
        text = text.strip()
        shared = _common_prefix(self.sent, text)
        rest = text[len(shared) :] if shared == self.sent else text[len(_whole_words(shared, text)) :]
        self.sent, self.previous = "", ""
        return rest
