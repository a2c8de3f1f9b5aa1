"""Output text conventions shared by every recognizer: Chinese in simplified characters."""

import functools

SIMPLIFIED_LANGUAGES = ("zh",)


@functools.cache
def _zhconv():
    import zhconv

    return zhconv


def to_simplified(text: str) -> str:
    """Traditional → simplified characters only (``zh-hans``): no regional word substitutions."""
    if not text or text.isascii():
        return text
    return _zhconv().convert(text, "zh-hans")


def output_text(text: str, language: str | None) -> str:
    return to_simplified(text) if language in SIMPLIFIED_LANGUAGES else text


def _cjk(ch: str) -> bool:
    return ord(ch) >= 0x2E80  # CJK radicals, punctuation, kana, ideographs, full-width forms


def has_cjk(text: str) -> bool:
    return any(_cjk(ch) for ch in text)


def join_pieces(left: str, right: str) -> str:
    """Join two pieces of one transcript: a space between them unless either side is CJK."""
    if not left or not right:
        return left + right
    if _cjk(left[-1]) or _cjk(right[0]):
        return left + right
    return f"{left} {right}"
