"""Scoring: the normaliser treats formatting differences as equal, WER counts real errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from asrclient import read_wav
from bench.evaluation import (
    concatenate_clips,
    edit_distance,
    int_to_words,
    load_manifest,
    normalize_text,
    word_error_rate,
)
from tests.support.paths import EVAL_DIR
from tests.support.paths import REPO as ROOT

REAL = EVAL_DIR / "real"


@pytest.mark.parametrize(
    ("hypothesis", "reference"),
    [
        ("10 of clubs.", "ten of clubs"),
        ("7 of clubs", "seven of clubs"),
        ("5, 5.", "five five"),
        ("Go forward 10 meters.", "go forward ten meters"),
        ("And Mr. John Dashwood", "and mister john dashwood"),
        ("Mrs. Dashwood and Dr. Smith", "missus dashwood and doctor smith"),
        ("rather cold-hearted", "rather cold hearted"),
        ("He was not an ill-disposed young man.", "he was not an ill disposed young man"),
        ("And so, my fellow Americans: ask not!", "and so my fellow americans ask not"),
        ("In 1992", "in nineteen ninety two"),
        ("the 2nd and 21st", "the second and twenty first"),
        ("50% more", "fifty percent more"),
        ("1,000 people", "one thousand people"),
        ("$5", "five dollars"),
        ("3.5", "three point five"),
        ("the 1990s", "the nineteen nineties"),
        ("Don't", "dont"),
        ("  spaced\tout \n words ", "spaced out words"),
    ],
)
def test_normaliser_makes_formatting_variants_equal(hypothesis: str, reference: str) -> None:
    assert normalize_text(hypothesis) == normalize_text(reference) == reference


def test_normaliser_keeps_real_differences() -> None:
    assert normalize_text("old-sposed") != normalize_text("ill disposed")
    assert normalize_text("ten of spades") != normalize_text("ten of clubs")


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (1992, "one thousand nine hundred ninety two"),
        (2_000_005, "two million five"),
    ],
)
def test_int_to_words(number: int, words: str) -> None:
    assert int_to_words(number) == words


def test_edit_distance_counts_substitutions_deletions_and_insertions() -> None:
    assert edit_distance("a b c".split(), "a b c".split()) == 0
    assert edit_distance("a b c".split(), "a x c".split()) == 1
    assert edit_distance("a b c".split(), "a c".split()) == 1
    assert edit_distance("a b c".split(), "a b c d".split()) == 1
    assert edit_distance("a b c".split(), []) == 3
    assert edit_distance([], "a b".split()) == 2
    assert edit_distance("a b c d".split(), "b c d a".split()) == 2


def test_word_error_rate_is_zero_for_formatting_only_differences() -> None:
    assert word_error_rate(["ten of clubs"], ["10 of clubs."]) == 0.0


def test_word_error_rate_of_one_substitution_in_three_words() -> None:
    assert word_error_rate(["ten of clubs"], ["ten of spades"]) == pytest.approx(1 / 3)


def test_word_error_rate_counts_insertions_so_it_can_exceed_one() -> None:
    assert word_error_rate(["yes"], ["yes yes yes"]) == pytest.approx(2.0)


def test_word_error_rate_is_corpus_level_not_a_mean_of_lines() -> None:
    # Line rates 0 and 3/4 would average 0.375; corpus rate is 3 edits / 6 words.
    assert word_error_rate(["a b", "c d e f"], ["a b", "c"]) == pytest.approx(0.5)


def test_word_error_rate_without_normalisation_counts_case_and_punctuation() -> None:
    assert word_error_rate(["ten of clubs"], ["Ten of clubs."], normalize=False) == pytest.approx(2 / 3)


def test_word_error_rate_refuses_mismatched_or_empty_input() -> None:
    with pytest.raises(ValueError):
        word_error_rate(["a"], [])
    with pytest.raises(ValueError):
        word_error_rate([""], ["a"])


def test_load_manifest_lists_every_real_clip_with_its_reference() -> None:
    entries = load_manifest(REAL)
    assert len(entries) == 14
    assert all(entry.audio_path.is_file() for entry in entries)
    assert entries[0].name == "cards-001.wav" and entries[0].text == "ten of clubs"


def test_concatenate_clips_lays_clips_out_between_silences() -> None:
    entries = load_manifest(REAL)[:3]
    session = concatenate_clips(entries, gap_s=1.0)
    assert session.sample_rate == 16000 and session.audio.dtype == np.float32
    lengths = [read_wav(e.audio_path).num_samples for e in entries]
    assert len(session.audio) == sum(lengths) + 3 * 16000  # two gaps and the tail
    first, second, third = session.clips
    assert first.start_s == 0.0 and first.reference == "ten of clubs"
    assert second.start_sample == first.end_sample + 16000
    assert third.end_s == pytest.approx(session.duration_s - 1.0)
    assert not session.audio[first.end_sample : second.start_sample].any()
    original = read_wav(entries[1].audio_path).samples / 32768.0
    np.testing.assert_allclose(session.audio[second.start_sample : second.end_sample], original)


def test_concatenate_clips_accepts_a_directory_and_lead_silence() -> None:
    session = concatenate_clips(REAL, gap_s=0.5, lead_s=0.25, tail_s=0.0)
    assert len(session.clips) == 14
    assert session.clips[0].start_s == pytest.approx(0.25)
    assert session.clips[-1].end_sample == len(session.audio)


def test_evaluation_imports_without_django_settings() -> None:
    code = "import sys, bench.evaluation; sys.exit('django' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr
