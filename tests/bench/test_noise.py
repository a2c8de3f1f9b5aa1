"""Noisy variants of the eval clips: the SNR asked for is the SNR written, and the same seed gives the same bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.evaluation import load_manifest
from bench.noise import Condition, active_mask, load_samples, make_variant
from tests.support.paths import EVAL_DIR

REAL = EVAL_DIR / "real"
CLIPS = ("jfk.wav", "cards-001.wav", "librivox-0880.wav")


def _entries():
    return [e for e in load_manifest(REAL) if e.name in CLIPS]


def _snr_of_written(clean_path, noisy_path, gain: float) -> float:
    """Measured from the 16-bit files: noise is what the variant holds beyond the (scaled) clean clip."""
    clean, noisy = load_samples(clean_path), load_samples(noisy_path)
    mask = active_mask(clean)
    speech = gain * clean[mask]
    return float(10 * np.log10(np.sum(speech**2) / np.sum((noisy[mask] - speech) ** 2)))


@pytest.mark.parametrize("spec", ["white:20", "white:10", "babble:20", "babble:10", "music:20", "music:10", "white:-5"])
def test_the_snr_written_is_within_half_a_decibel_of_the_snr_asked(tmp_path, spec):
    condition = Condition.parse(spec)
    made = make_variant(_entries(), tmp_path, condition, seed=3, pool=load_manifest(REAL))
    assert [e.name for e in made] == [e.name for e in _entries()]
    records = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    for entry, record in zip(_entries(), records, strict=True):
        written = _snr_of_written(entry.audio_path, tmp_path / entry.name, record["variant"]["gain"])
        assert written == pytest.approx(condition.snr_db, abs=0.5), (entry.name, written)
        assert np.max(np.abs(load_samples(tmp_path / entry.name))) < 0.99  # clipping-safe


def test_variants_are_deterministic_and_the_seed_changes_them(tmp_path):
    for spec in ("white:10", "babble:20", "music:20"):
        condition = Condition.parse(spec)
        first, again, other = (tmp_path / spec / name for name in ("a", "b", "c"))
        make_variant(_entries(), first, condition, seed=0, pool=load_manifest(REAL))
        make_variant(_entries(), again, condition, seed=0, pool=load_manifest(REAL))
        make_variant(_entries(), other, condition, seed=1, pool=load_manifest(REAL))
        for name in CLIPS:
            assert (first / name).read_bytes() == (again / name).read_bytes()
            assert (first / name).read_bytes() != (other / name).read_bytes()
        assert (first / "manifest.jsonl").read_text() == (again / "manifest.jsonl").read_text()


def test_a_clip_keeps_its_noise_whatever_else_is_in_the_subset(tmp_path):
    alone = make_variant(_entries()[:1], tmp_path / "one", Condition.parse("babble:20"), pool=load_manifest(REAL))
    make_variant(_entries(), tmp_path / "all", Condition.parse("babble:20"), pool=load_manifest(REAL))
    name = alone[0].name
    assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "all" / name).read_bytes()


@pytest.mark.parametrize("level", [-12.0, -6.0, 0.0])
def test_relevelling_puts_the_peak_at_the_level_without_clipping(tmp_path, level):
    made = make_variant(_entries(), tmp_path, Condition.parse(f"level:{level:g}"))
    for entry in made:
        peak_dbfs = 20 * np.log10(np.max(np.abs(load_samples(entry.audio_path))))
        assert peak_dbfs == pytest.approx(min(level, 20 * np.log10(0.98)), abs=0.05)
        assert entry.text == next(e.text for e in _entries() if e.name == entry.name)


def test_variants_are_never_written_into_the_eval_sets():
    with pytest.raises(ValueError, match="never go into an eval set"):
        make_variant(_entries(), EVAL_DIR / "real-noisy", Condition.parse("white:20"))


@pytest.mark.parametrize("spec", ["pink:20", "white", "level:3", "white:loud"])
def test_unknown_or_malformed_conditions_are_refused(spec):
    with pytest.raises(ValueError):
        Condition.parse(spec)
