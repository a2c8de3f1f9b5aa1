"""Output text conventions shared by every recognizer: Chinese in simplified characters."""

import functools
import re

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


# A number written with commas whose groups are not all three digits ("1,0001" for "one zero zero
# zero one" said with pauses): not a number anyone said.
_BAD_GROUPING = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d+)+(?!\d)(?!,\d)")
# Languages written with a comma between thousands (elsewhere "10,50" is a decimal).
THOUSANDS_COMMA_LANGUAGES = ("en", "zh", "ja", "ko")


def fix_digit_grouping(text: str, language: str | None) -> str:
    """Numbers as said: commas dropped from a digit string that is not a valid thousands grouping."""
    if language not in THOUSANDS_COMMA_LANGUAGES:
        return text

    def ungroup(match: re.Match[str]) -> str:
        number = match.group(0)
        groups = number.split(",")[1:]
        return number if all(len(g) == 3 for g in groups) else number.replace(",", "")

    return _BAD_GROUPING.sub(ungroup, text)
