"""Noisy and re-levelled variants of an eval set, so accuracy can be measured off the clean path.

``python -m bench.noise --eval-dir ../shared/eval/real --condition white:20 --condition babble:10``
writes ``var/eval-variants/real-white-20db-s0/`` and so on: WAVs plus a ``manifest.jsonl`` in the
eval sets' own format (``bench.evaluation.load_manifest`` reads it). Every clip's noise comes from
a generator seeded with ``--seed`` and the clip's name: the same arguments give the same bytes.

SNR is measured over the speech's active samples: the 30 ms windows of the clean clip within 30 dB
of its loudest window (``bench.loadstats``' rule for speech). Speech power is the clean clip's mean
square over those samples, noise power the added noise's mean square over the same samples, so
leading silence and pauses dilute neither, and a noise that comes and goes (babble, music) is
judged where it competes with the speech. A mixture that would clip is scaled down as a whole,
which leaves the SNR as it was.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import wave
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrclient.wav import WavAudio, read_wav
from bench.evaluation import SAMPLE_RATE, ManifestEntry, load_manifest
from bench.loadstats import SPEECH_BELOW_PEAK_DB, SPEECH_FLOOR_DB, SPEECH_WINDOW_S

ROOT = Path(__file__).resolve().parent.parent
VARIANTS_DIR = ROOT / "var" / "eval-variants"
SHARED_EVAL = Path(os.environ.get("ASR_EVAL_DIR", ROOT.parent / "shared" / "eval"))
KINDS = ("clean", "white", "babble", "music", "level")
PEAK_LIMIT = 0.98  # a louder mixture is scaled down whole: int16 never clips, the SNR stays
MIN_LEVEL_DBFS = -60.0
BABBLE_TALKERS = 4
CHORD_HOP_S = 1.5  # a new chord this often; each swells and fades over twice that (Hann window)


@dataclass(frozen=True)
class Condition:
    """What is done to every clip: ``white:20``, ``babble:10``, ``music:20``, ``level:-6``, ``clean``."""

    kind: str
    snr_db: float | None = None  # noise kinds
    level_dbfs: float | None = None  # "level": the clip's peak after re-levelling

    @classmethod
    def parse(cls, spec: str) -> Condition:
        kind, _, value = spec.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown condition {spec!r}; kinds: {', '.join(KINDS)}")
        if kind == "clean":
            return cls("clean")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{spec!r}: give a number after the colon ({kind}:<dB>)") from None
        if kind == "level":
            if not MIN_LEVEL_DBFS <= number <= 0:
                raise ValueError(f"{spec!r}: a level is between {MIN_LEVEL_DBFS:g} and 0 dBFS")
            return cls("level", level_dbfs=number)
        return cls(kind, snr_db=number)

    @property
    def name(self) -> str:
        if self.kind == "level":
            return f"level{self.level_dbfs:g}dbfs"
        return self.kind if self.snr_db is None else f"{self.kind}-{self.snr_db:g}db"


@dataclass(frozen=True)
class Rendered:
    audio: np.ndarray  # float64, peak ≤ PEAK_LIMIT
    gain: float  # what the clean clip was multiplied by inside ``audio``
    snr_db: float | None  # over the active samples, before 16-bit rounding


def load_samples(path: Path) -> np.ndarray:
    audio = read_wav(path)
    if audio.sample_rate != SAMPLE_RATE:
        raise ValueError(f"{path.name}: {audio.sample_rate} Hz, expected {SAMPLE_RATE} Hz")
    return audio.samples.astype(np.float64) / 32768.0


def active_mask(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """True on the samples of the 30 ms windows within 30 dB of the clip's loudest window."""
    width = round(SPEECH_WINDOW_S * sample_rate)
    count = len(samples) // width
    mask = np.zeros(len(samples), dtype=bool)
    if count == 0:
        raise ValueError("clip shorter than one 30 ms window")
    power = np.mean(samples[: count * width].reshape(count, width) ** 2, axis=1)
    level = 10 * np.log10(power + 1e-20)
    if level.max() < SPEECH_FLOOR_DB:
        raise ValueError("clip holds no audible speech")
    mask[: count * width] = np.repeat(level >= level.max() - SPEECH_BELOW_PEAK_DB, width)
    return mask


def measure_snr(clean: np.ndarray, noisy: np.ndarray, gain: float = 1.0) -> float:
    """SNR of ``noisy`` against ``gain * clean`` over the clean clip's active samples."""
    mask = active_mask(clean)
    speech = gain * clean[mask]
    noise = noisy[mask] - speech
    return float(10 * np.log10(np.mean(speech**2) / np.mean(noise**2)))


def clip_rng(seed: int, condition: Condition, name: str) -> np.random.Generator:
    """One generator per (seed, condition, clip): a clip's noise does not depend on the others'."""
    return np.random.default_rng([seed, zlib.crc32(f"{condition.name}/{name}".encode())])


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def babble(n: int, others: Sequence[np.ndarray], rng: np.random.Generator, talkers: int = BABBLE_TALKERS) -> np.ndarray:
    """Several other clips of the set, each looped, started at a random point and at equal speech power."""
    if not others:
        raise ValueError("babble needs other clips in the set")
    chosen = rng.choice(len(others), size=min(talkers, len(others)), replace=False)
    total = np.zeros(n)
    for index in sorted(chosen.tolist()):
        voice = others[index]
        voice = voice / math.sqrt(np.mean(voice[active_mask(voice)] ** 2))
        looped = np.tile(voice, n // len(voice) + 2)
        start = int(rng.integers(len(voice)))
        total += looped[start : start + n]
    return total


def music(n: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Major and minor triads with two overtones, a new chord every 1.5 s, each swelling and fading."""
    hop = round(CHORD_HOP_S * sample_rate)
    window = np.hanning(2 * hop)
    t = np.arange(2 * hop) / sample_rate
    out = np.zeros(n + 3 * hop)
    for start in range(0, n + hop, hop):
        root = int(rng.integers(45, 70))  # MIDI: A2 to A#4
        third = 4 if rng.random() < 0.5 else 3
        chord = np.zeros(2 * hop)
        for note in (root, root + third, root + 7):
            freq = 440.0 * 2 ** ((note - 69) / 12)
            phase = rng.uniform(0, 2 * np.pi)
            for harmonic, amplitude in ((1, 1.0), (2, 0.4), (3, 0.2)):
                chord += amplitude * np.sin(2 * np.pi * freq * harmonic * t + phase * harmonic)
        out[start : start + 2 * hop] += window * chord
    return out[hop : hop + n]  # skip the first swell: the clip starts in the music, not at its onset


def add_noise(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> Rendered:
    """``clean`` plus ``noise`` scaled to ``snr_db`` over the active samples, clipping-safe."""
    mask = active_mask(clean)
    speech_power = np.mean(clean[mask] ** 2)
    noise_power = np.mean(noise[mask] ** 2)
    mixed = clean + noise * math.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    gain = min(1.0, PEAK_LIMIT / float(np.max(np.abs(mixed))))
    return Rendered(mixed * gain, gain, measure_snr(clean, mixed * gain, gain))


def relevel(clean: np.ndarray, level_dbfs: float) -> Rendered:
    """Scale the clip so that its peak sits at ``level_dbfs`` (at most PEAK_LIMIT)."""
    gain = min(10 ** (level_dbfs / 20), PEAK_LIMIT) / float(np.max(np.abs(clean)))
    return Rendered(clean * gain, gain, None)


def render(
    clean: np.ndarray, condition: Condition, rng: np.random.Generator, others: Sequence[np.ndarray] = ()
) -> Rendered:
    if condition.kind == "clean":
        return Rendered(clean, 1.0, None)
    if condition.kind == "level":
        assert condition.level_dbfs is not None
        return relevel(clean, condition.level_dbfs)
    assert condition.snr_db is not None
    n = len(clean)
    noise = {
        "white": lambda: white_noise(n, rng),
        "babble": lambda: babble(n, others, rng),
        "music": lambda: music(n, rng),
    }
    return add_noise(clean, noise[condition.kind](), condition.snr_db)


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = WavAudio.from_float(samples, SAMPLE_RATE).samples
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def _check_destination(out_dir: Path, source_dir: Path) -> None:
    out = out_dir.resolve()
    for protected in (SHARED_EVAL.resolve(), source_dir.resolve()):
        if out == protected or out.is_relative_to(protected):
            raise ValueError(f"{out_dir} is inside {protected}: variants never go into an eval set")


def make_variant(
    entries: Sequence[ManifestEntry],
    out_dir: Path,
    condition: Condition,
    *,
    seed: int = 0,
    pool: Sequence[ManifestEntry] | None = None,
) -> list[ManifestEntry]:
    """Write ``condition`` applied to each of ``entries`` into ``out_dir``; returns the new manifest.

    ``pool``: the clips babble is made from (default ``entries``), never the clip itself, so a
    subset of a set babbles with the whole set and its clips sound as they would in a full run.
    """
    if not entries:
        raise ValueError("no clips")
    _check_destination(out_dir, entries[0].audio_path.parent)
    out_dir.mkdir(parents=True, exist_ok=True)
    pool_audio = {e.name: load_samples(e.audio_path) for e in (pool or entries)} if condition.kind == "babble" else {}
    lines = []
    for entry in entries:
        clean = load_samples(entry.audio_path)
        others = [audio for name, audio in sorted(pool_audio.items()) if name != entry.name]
        result = render(clean, condition, clip_rng(seed, condition, entry.name), others)
        write_wav(out_dir / entry.name, result.audio)
        variant = {"of": str(entry.audio_path), "condition": condition.name, "seed": seed, "gain": result.gain}
        if result.snr_db is not None:
            variant["snr_db"] = round(result.snr_db, 3)
        record = {"audio": entry.name, "text": entry.text, "source": entry.source, "variant": variant}
        lines.append(json.dumps(record, ensure_ascii=False))
    (out_dir / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_manifest(out_dir)


def variant_dir(root: Path, set_name: str, condition: Condition, seed: int) -> Path:
    return root / f"{set_name}-{condition.name}-s{seed}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.noise", description=__doc__)
    p.add_argument("--eval-dir", type=Path, default=SHARED_EVAL / "real", help="a set: clips + manifest.jsonl")
    p.add_argument("--condition", action="append", required=True, help="white:SNR, babble:SNR, music:SNR, level:dBFS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-root", type=Path, default=VARIANTS_DIR, help="default var/eval-variants")
    args = p.parse_args(argv)
    entries = load_manifest(args.eval_dir)
    for spec in args.condition:
        condition = Condition.parse(spec)
        out = variant_dir(args.out_root, args.eval_dir.name, condition, args.seed)
        made = make_variant(entries, out, condition, seed=args.seed)
        print(f"{out}: {len(made)} clips ({condition.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
