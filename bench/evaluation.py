"""Scoring helpers for English speech recognition: text normalisation, WER, test sessions.

Plain Python (no Django): the benchmark and the tests share one definition of
"the same answer" ("10 of clubs." == "ten of clubs") and one way to build long sessions.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrclient.wav import read_wav

SAMPLE_RATE = 16000

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip
# Titles only; "st" (saint / street) and "ms" (miss / milliseconds) are too ambiguous.
_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "dr": "doctor", "prof": "professor",
    "jr": "junior", "sr": "senior", "vs": "versus", "etc": "et cetera",
}  # fmt: skip
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}


def int_to_words(n: int) -> str:
    """American English cardinal without "and": 1992 -> "one thousand nine hundred ninety two"."""
    if n < 0:
        return "minus " + int_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, rest = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[rest] if rest else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + int_to_words(rest) if rest else "")
    if n >= 1000 * _SCALES[0][0]:
        return " ".join(_ONES[int(d)] for d in str(n))
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return f"{int_to_words(head)} {name}" + (" " + int_to_words(rest) if rest else "")
    raise AssertionError("unreachable")


def ordinal_to_words(n: int) -> str:
    """21 -> "twenty first", 12 -> "twelfth"."""
    words = int_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year_to_words(n: int) -> str:
    """Read 4-digit numbers as years, as people say them: 1992 -> "nineteen ninety two"."""
    if not (1100 <= n <= 2099) or 2000 <= n <= 2009:
        return int_to_words(n)
    head, rest = divmod(n, 100)
    if rest == 0:
        return f"{int_to_words(head)} hundred"
    if rest < 10:
        return f"{int_to_words(head)} oh {int_to_words(rest)}"
    return f"{int_to_words(head)} {int_to_words(rest)}"


def number_to_words(digits: str) -> str:
    """A bare run of digits: years read as years, leading zeros digit by digit (007, 0800)."""
    if len(digits) > 1 and digits.startswith("0"):
        return " ".join(_ONES[int(d)] for d in digits)
    value = int(digits)
    return year_to_words(value) if len(digits) == 4 else int_to_words(value)


def _decimal_to_words(whole: str, fraction: str) -> str:
    head = number_to_words(whole) if whole else ""
    return f"{head} point {' '.join(_ONES[int(d)] for d in fraction)}".strip()


def _currency(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[match.group(1)]
    whole, fraction = match.group(2).replace(",", ""), match.group(3)
    main = f"{int_to_words(int(whole))} {one if int(whole) == 1 else many}"
    if fraction is None:
        return f" {main} "
    if len(fraction) == 2:
        cents = int(fraction)
        return f" {main} {int_to_words(cents)} {sub_one if cents == 1 else sub_many} "
    return f" {_decimal_to_words(whole, fraction)} {many} "


def _plural_number(match: re.Match[str]) -> str:
    """The 1990s -> the nineteen nineties; 80s -> eighties."""
    words = number_to_words(match[1]).split()
    words[-1] = words[-1][:-1] + "ies" if words[-1].endswith("y") else words[-1] + "s"
    return f" {' '.join(words)} "


def _grouped_number(match: re.Match[str]) -> str:
    whole = int_to_words(int(match[1].replace(",", "")))
    if not match[2]:
        return f" {whole} "
    return f" {whole} point {' '.join(_ONES[int(d)] for d in match[2])} "


_Replacement = str | Callable[[re.Match[str]], str]
_SUBSTITUTIONS: tuple[tuple[re.Pattern[str], _Replacement], ...] = (
    (re.compile(r"\b(?:[a-z]\.){2,}"), lambda m: m.group(0).replace(".", "")),  # u.s.a. -> usa
    (re.compile(rf"\b({'|'.join(_ABBREVIATIONS)})\b\.?"), lambda m: _ABBREVIATIONS[m[1]]),
    (re.compile(r"([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"), _currency),
    (re.compile(r"(\d*)\.(\d+)\s?%"), lambda m: f" {_decimal_to_words(m[1], m[2])} percent "),
    (re.compile(r"(\d+)\s?%"), lambda m: f" {int_to_words(int(m[1]))} percent "),
    (re.compile(r"%"), " percent "),
    (re.compile(r"(\d+)(?:st|nd|rd|th)\b"), lambda m: f" {ordinal_to_words(int(m[1]))} "),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+)(?:\.(\d+))?"), _grouped_number),  # 1,000.50
    (re.compile(r"(?<![\d.])(\d*)\.(\d+)"), lambda m: f" {_decimal_to_words(m[1], m[2])} "),
    (re.compile(r"\b(\d+)'?s\b"), _plural_number),
    (re.compile(r"\d+"), lambda m: f" {number_to_words(m[0])} "),
    (re.compile(r"&"), " and "),
    (re.compile(r"['’‘`]"), ""),  # don't -> dont, on both sides alike
    (re.compile(r"[\W_]+"), " "),  # punctuation, hyphens and dashes become spaces
)


def normalize_text(text: str) -> str:
    """Lower case, numbers and titles spelled out, no punctuation, hyphens as spaces.

    Applied to both reference and hypothesis so that only real recognition errors count.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    for pattern, replacement in _SUBSTITUTIONS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over words: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], *, normalize: bool = True) -> float:
    """Corpus WER: total word edits / total reference words (not a mean of per-line rates)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    prepare = normalize_text if normalize else (lambda s: s)
    edits = words = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref_words, hyp_words = prepare(reference).split(), prepare(hypothesis).split()
        edits += edit_distance(ref_words, hyp_words)
        words += len(ref_words)
    if words == 0:
        raise ValueError("the references contain no words")
    return edits / words


@dataclass(frozen=True)
class ManifestEntry:
    """One evaluation clip: its audio file and what was said."""

    audio_path: Path
    text: str
    source: str = ""

    @property
    def name(self) -> str:
        return self.audio_path.name


def load_manifest(directory: str | os.PathLike[str]) -> list[ManifestEntry]:
    """Read `manifest.jsonl` in `directory` (fields: audio, text, source), in file order."""
    directory = Path(directory)
    entries = []
    with open(directory / "manifest.jsonl", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                audio, text = directory / record["audio"], record["text"]
                entries.append(ManifestEntry(audio, text, record.get("source", "")))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"manifest.jsonl line {number}: {exc!r}") from exc
    return entries


@dataclass(frozen=True)
class ClipSpan:
    """Where one clip sits in a concatenated session: the ground truth for endpointing."""

    name: str
    reference: str
    start_sample: int
    end_sample: int  # exclusive
    sample_rate: int = SAMPLE_RATE

    @property
    def start_s(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end_s(self) -> float:
        return self.end_sample / self.sample_rate


@dataclass(frozen=True)
class ConcatenatedSession:
    audio: np.ndarray  # float32 in [-1, 1], mono
    sample_rate: int
    clips: list[ClipSpan]

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


def concatenate_clips(
    entries: Sequence[ManifestEntry] | str | os.PathLike[str],
    *,
    gap_s: float = 1.0,
    lead_s: float = 0.0,
    tail_s: float | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> ConcatenatedSession:
    """One long session: clips separated by `gap_s` of digital silence, known boundaries.

    `tail_s` (default `gap_s`) of silence follows the last clip so that endpointing, not the
    end of the stream, closes the last utterance. Accepts entries or a manifest directory.
    """
    if isinstance(entries, (str, os.PathLike)):
        entries = load_manifest(entries)
    if not entries:
        raise ValueError("no clips to concatenate")
    gap = np.zeros(round(gap_s * sample_rate), dtype=np.float32)
    parts = [np.zeros(round(lead_s * sample_rate), dtype=np.float32)]
    spans = []
    position = len(parts[0])
    for index, entry in enumerate(entries):
        audio = read_wav(entry.audio_path)
        if audio.sample_rate != sample_rate:
            raise ValueError(f"{entry.name}: {audio.sample_rate} Hz, expected {sample_rate} Hz")
        if index:
            parts.append(gap)
            position += len(gap)
        samples = audio.samples.astype(np.float32) / 32768.0
        parts.append(samples)
        end = position + len(samples)
        spans.append(ClipSpan(entry.name, entry.text, position, end, sample_rate))
        position += len(samples)
    parts.append(np.zeros(round((gap_s if tail_s is None else tail_s) * sample_rate), np.float32))
    return ConcatenatedSession(np.concatenate(parts), sample_rate, spans)


# --- Chinese: character error rate --------------------------------------------------------

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ((10**8, "亿"), (10**4, "万"), (1000, "千"), (100, "百"), (10, "十"))


def int_to_chinese(n: int, *, leading: bool = True) -> str:
    """Cardinal reading: 105 -> 一百零五, 110 -> 一百一十, 12345 -> 一万二千三百四十五, 15 -> 十五."""
    if n < 10:
        return _ZH_DIGITS[n]
    for value, unit in _ZH_UNITS:
        if n >= value:
            head, rest = divmod(n, value)
            text = ("" if (value == 10 and head == 1 and leading) else int_to_chinese(head, leading=leading)) + unit
            if rest:
                text += ("零" if rest < value // 10 else "") + int_to_chinese(rest, leading=False)
            return text
    raise AssertionError("unreachable")


def _zh_number(match: re.Match[str]) -> str:
    whole, fraction, percent, suffix = match[1], match[2], match[3], match[4] or ""
    if suffix == "年" and len(whole) == 4 and not fraction and not percent:
        spoken = "".join(_ZH_DIGITS[int(d)] for d in whole)  # 2023年: 二零二三年
    elif len(whole) > 1 and whole.startswith("0"):
        spoken = "".join(_ZH_DIGITS[int(d)] for d in whole)
    else:
        spoken = int_to_chinese(int(whole))
    if fraction:
        spoken += "点" + "".join(_ZH_DIGITS[int(d)] for d in fraction)
    return ("百分之" + spoken if percent else spoken) + suffix


_ZH_NUMBER = re.compile(r"(\d+)(?:\.(\d+))?\s*(%)?(年)?")


def normalize_chinese(text: str) -> str:
    """Simplified characters, numbers read out in Chinese, no punctuation, symbols or spaces.

    "富士康…已下降超50%。" and "富士康…已下降超百分之五十" normalise to the same string.
    """
    from transcription.engine.text import to_simplified

    text = to_simplified(unicodedata.normalize("NFKC", text)).lower()
    text = _ZH_NUMBER.sub(_zh_number, text.replace(",", "") if re.search(r"\d,\d{3}", text) else text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER after :func:`normalize_chinese`: character edits / reference characters."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits = chars = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref, hyp = normalize_chinese(reference), normalize_chinese(hypothesis)
        edits += edit_distance(list(ref), list(hyp))
        chars += len(ref)
    if chars == 0:
        raise ValueError("the references contain no characters")
    return edits / chars
