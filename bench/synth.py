"""`python -m bench.synth --out DIR`: extra English test speech from espeak-ng and sox.

Varied voices, speeds and pitches, some clips with pink, brown or white noise at a chosen SNR,
all 16 kHz mono s16 WAV, plus a `manifest.jsonl` in the format of the real eval set so that
`python -m bench --eval-dir DIR` and `load_manifest` read it unchanged. The reference text is
exactly what espeak-ng was told to say. Same seed, same clips (sox runs in repeatable mode).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrclient import read_wav
from bench.evaluation import ManifestEntry, load_manifest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "var" / "synth"
SAMPLE_RATE = 16000
INSTALL_HINT = "install them with: apt-get install -y espeak-ng sox"

# Plain words only: no digits, abbreviations or symbols, so what is spoken is the reference.
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call the front desk when your room is ready.",
    "The train to the coast leaves early in the morning.",
    "She opened the window and let the cool air into the kitchen.",
    "Our meeting has been moved to the large room on the second floor.",
    "The children played in the garden until it started to rain.",
    "He forgot his umbrella on the bus again.",
    "A cup of hot tea is the best way to start a cold day.",
    "The library closes at noon on public holidays.",
    "Turn left at the old church and follow the river.",
    "We need more paper for the printer before the report is due.",
    "The doctor asked him to rest for a few days.",
    "Fresh bread smells wonderful when it comes out of the oven.",
    "The museum has a new exhibition about ancient ships.",
    "Could you send me the address of the hotel?",
    "The weather should be sunny and warm this weekend.",
    "My brother is learning to play the piano.",
    "The shop on the corner sells fruit and vegetables.",
    "They walked along the beach and watched the sunset.",
    "The engineer checked every cable before turning on the power.",
    "It is important to drink enough water during the summer.",
    "The cat slept all afternoon on the warm windowsill.",
    "Please remember to lock the door when you leave.",
    "The new bridge will open to traffic next spring.",
    "She wrote a long letter to her grandmother.",
    "The farmer sold eggs and honey at the market.",
    "Heavy snow closed the mountain road for the night.",
    "The orchestra played a beautiful piece by a young composer.",
    "We watched a documentary about whales and dolphins.",
    "The teacher asked the students to read the first chapter.",
    "A strong wind blew the leaves across the empty street.",
    "He painted the fence a bright shade of blue.",
    "The restaurant serves breakfast until late in the morning.",
    "Our flight was delayed because of the storm.",
    "The garden is full of roses and tall sunflowers.",
    "She found her keys under a pile of old newspapers.",
    "The scientist explained how the experiment works.",
    "Many people ride their bicycles to work in this city.",
    "The old clock in the hall stopped working last winter.",
    "Thank you for waiting, your order will be ready soon.",
)
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029")
VARIANTS = ("", "m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4")
NOISES = ("pinknoise", "brownnoise", "whitenoise")
SNRS_DB = (10, 15, 20, 30)
NOISY_SHARE = 0.5
LEAD_S, TAIL_S = 0.3, 0.5  # silence around the speech, as in a real recording
MAX_NOISE_OFFSET_S = 5.0  # sox's noise is the same on every run; a start offset varies it per clip


class SynthError(RuntimeError):
    """A tool is missing or failed; the message says which and how to fix it."""


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides one clip's audio, drawn from the seed."""

    name: str
    text: str
    voice: str
    speed_wpm: int
    pitch: int
    noise: str | None
    snr_db: int | None
    noise_offset_s: float

    @property
    def source(self) -> str:
        noise = f"{self.noise} snr {self.snr_db} dB" if self.noise else "clean"
        return f"espeak-ng {self.voice} speed {self.speed_wpm} pitch {self.pitch} {noise}"


def check_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise SynthError(f"{' and '.join(missing)} not found on PATH; {INSTALL_HINT}")


def plan(count: int, seed: int) -> list[ClipSpec]:
    """The clips for a seed: sentences without repeats until the list runs out, varied voices."""
    if count < 1:
        raise ValueError(f"--count must be at least 1, not {count}")
    rng = random.Random(seed)
    order: list[str] = []
    specs = []
    for index in range(count):
        if not order:
            order = list(SENTENCES)
            rng.shuffle(order)
        variant = rng.choice(VARIANTS)
        voice = rng.choice(VOICES) + (f"+{variant}" if variant else "")
        noisy = rng.random() < NOISY_SHARE
        specs.append(
            ClipSpec(
                name=f"synth-s{seed}-{index:03d}.wav",
                text=order.pop(),
                voice=voice,
                speed_wpm=rng.randrange(130, 191, 10),
                pitch=rng.randrange(25, 76, 5),
                noise=rng.choice(NOISES) if noisy else None,
                snr_db=rng.choice(SNRS_DB) if noisy else None,
                noise_offset_s=round(rng.uniform(0.0, MAX_NOISE_OFFSET_S), 2),
            )
        )
    return specs


def _run(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SynthError(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr.strip()}")


def _samples(path: Path) -> np.ndarray:
    return read_wav(path).samples.astype(np.float64) / 32768.0


def speech_power(samples: np.ndarray, frame: int = 320) -> float:
    """Mean power of the 20 ms frames within 40 dB of the loudest: speech, not its pauses."""
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    power = (frames**2).mean(axis=1)
    active = power[power >= power.max() * 1e-4]
    return float(active.mean())


def render(spec: ClipSpec, out_dir: Path, workdir: Path) -> Path:
    """espeak-ng → peak-normalised 16 kHz s16 with silence around it → noise mixed at the SNR."""
    raw, speech = workdir / "raw.wav", workdir / "speech.wav"
    _run(["espeak-ng", "-v", spec.voice, "-s", str(spec.speed_wpm), "-p", str(spec.pitch), "-w", str(raw), spec.text])
    # -R: repeatable (fixed seeds for dither and noise); -D: no dither, so the output is exact.
    _run(["sox", "-R", "-D", str(raw), "-b", "16", "-c", "1", str(speech)]
         + ["gain", "-n", "-6", "rate", "-v", str(SAMPLE_RATE), "pad", str(LEAD_S), str(TAIL_S)])  # fmt: skip
    target = out_dir / spec.name
    if spec.noise is None or spec.snr_db is None:
        shutil.move(speech, target)
        return target
    voice = _samples(speech)
    duration = len(voice) / SAMPLE_RATE
    noise = workdir / "noise.wav"
    _run(["sox", "-R", "-D", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(noise)]
         + ["synth", f"{duration + spec.noise_offset_s:.4f}", spec.noise]
         + ["trim", f"{spec.noise_offset_s}", f"{duration:.4f}"])  # fmt: skip
    noise_power = float((_samples(noise) ** 2).mean())
    gain = float(np.sqrt(speech_power(voice) / (noise_power * 10 ** (spec.snr_db / 10))))
    _run(["sox", "-R", "-D", "-m", "-v", "1", str(speech), "-v", f"{gain:.6f}", str(noise), "-b", "16", str(target)])
    return target


def synthesize(out_dir: str | Path, *, count: int = 20, seed: int = 0, echo: bool = True) -> list[ManifestEntry]:
    """Write `count` clips and `manifest.jsonl` (replacing any manifest there); returns its entries."""
    check_tools()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(count, seed)
    records = []
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        for number, spec in enumerate(specs, start=1):
            path = render(spec, out, Path(tmp))
            records.append({"audio": path.name, "text": spec.text, "source": spec.source})
            if echo:
                duration = read_wav(path).duration_s
                print(f"[{number}/{count}] {spec.name} {duration:.1f} s  {spec.source}: {spec.text}", flush=True)
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return load_manifest(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synth", description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"clips + manifest go here (default {DEFAULT_OUT})"
    )
    parser.add_argument("--count", type=int, default=20, help="clips to make (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="picks sentences, voices, noise (default 0)")
    args = parser.parse_args(argv)
    try:
        entries = synthesize(args.out, count=args.count, seed=args.seed)
    except (SynthError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(entries)} clips and manifest.jsonl to {args.out}")
    print(f"benchmark them with: python -m bench --eval-dir {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
