"""`python -m bench nonspeech`: finals per hour where nobody speaks (the hallucination guard's figure).

Streams, through the engine in this process (the model and settings a server would use):
- pure non-speech: white noise at -40 and -20 dBFS, pink noise, music-like chords with envelopes,
  clicks, breath-like bursts (all made here, seeded);
- the eval session (real/ clips with 3 s gaps) with white noise at 20 and 10 dB SNR over all of it:
  a final whose span overlaps no clip is one said over the noise alone.
Target: 0 finals per hour on both. Prints a table; ``--output`` writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RATE = 16000
DEFAULT_EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "real"


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.arange(1, len(spectrum) + 1))
    x = np.fft.irfft(spectrum, n)
    return x / np.abs(x).max()


def _chords(rng: np.random.Generator, n: int) -> np.ndarray:
    out, t = np.zeros(n), np.arange(n) / RATE
    for start in range(0, n, 2 * RATE):
        span = slice(start, min(start + 2 * RATE, n))
        local = t[span] - start / RATE
        envelope = np.minimum(1.0, local * 4) * np.exp(-local * 0.8)
        freqs = 220 * 2 ** (rng.integers(0, 24, 3) / 12)
        out[span] = sum(np.sin(2 * np.pi * f * local) for f in freqs) * envelope / 3
    return out


def _clicks(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[rng.integers(0, n - 1, 3 * n // RATE)] = rng.uniform(0.3, 0.9, 3 * n // RATE)
    return out


def _breath(rng: np.random.Generator, n: int) -> np.ndarray:
    bursts = np.sin(2 * np.pi * np.arange(n) / RATE / 4) > 0.3
    return _pink(rng, n) * bursts * 0.3


NONSPEECH: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "white noise -40 dBFS": lambda rng, n: rng.standard_normal(n) * 0.01,
    "white noise -20 dBFS": lambda rng, n: rng.standard_normal(n) * 0.1,
    "pink noise": lambda rng, n: _pink(rng, n) * 0.3,
    "music-like chords": lambda rng, n: _chords(rng, n) * 0.3,
    "clicks": _clicks,
    "breath-like bursts": _breath,
}


def _stream(engine_factory: Callable[[], object], audio: np.ndarray) -> list:
    from tests.support.audio import to_s16  # the one float → s16 conversion the tests use

    engine = engine_factory()
    finals: list = []
    for i in range(0, len(audio), RATE // 10):
        finals += engine.accept_audio(to_s16(audio[i : i + RATE // 10]))  # type: ignore[attr-defined]
    return finals + engine.finalize("stop")  # type: ignore[attr-defined]


def _with_noise(speech: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` below the speech's power over its active (non-silent) samples."""
    active = speech[np.abs(speech) > 1e-4]
    noise_rms = np.sqrt(np.mean(active**2)) / 10 ** (snr_db / 20)
    return np.clip(speech + rng.standard_normal(len(speech)) * noise_rms, -1, 1)


def measure(seconds: float, eval_dir: Path) -> list[dict[str, object]]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asrplatform.settings.test")
    import django

    django.setup()
    from bench.evaluation import concatenate_clips
    from transcription.engine import SessionLimits, StreamingSession, parse_start
    from transcription.engine.models import ModelSettings, load_models

    models = load_models(ModelSettings())

    def engine() -> StreamingSession:
        return StreamingSession(parse_start({"sample_rate": RATE}, SessionLimits()), models)

    rows: list[dict[str, object]] = []
    rng = np.random.default_rng(7)
    n = int(seconds * RATE)
    for name, make in NONSPEECH.items():
        started = time.process_time()
        finals = [f for f in _stream(engine, np.clip(make(rng, n), -1, 1).astype(np.float32)) if f.text.strip()]
        rows.append({"input": name, "hours": seconds / 3600, "finals": len(finals), "texts": [f.text for f in finals],
                     "cpu_s": round(time.process_time() - started, 1)})  # fmt: skip
    session = concatenate_clips(eval_dir, gap_s=3.0, tail_s=3.0)
    for snr in (20, 10):
        audio = _with_noise(session.audio, snr, rng).astype(np.float32)
        started = time.process_time()
        finals = [f for f in _stream(engine, audio) if f.text.strip()]
        outside = [f for f in finals if not any(f.start < c.end_s and f.end > c.start_s for c in session.clips)]
        rows.append({"input": f"real/ + white noise {snr} dB SNR, outside speech",
                     "hours": (len(audio) / RATE - sum(c.end_s - c.start_s for c in session.clips)) / 3600,
                     "finals": len(outside), "texts": [f.text for f in outside],
                     "cpu_s": round(time.process_time() - started, 1)})  # fmt: skip
    return rows


def render(rows: list[dict[str, object]]) -> str:
    lines = ["| input | audio (min) | finals | finals per hour |", "|---|---|---|---|"]
    for row in rows:
        hours = float(row["hours"])  # type: ignore[arg-type]
        finals = int(row["finals"])  # type: ignore[call-overload]
        lines.append(f"| {row['input']} | {hours * 60:.1f} | {finals} | {finals / hours:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench nonspeech", description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0, help="of each non-speech input (default 300)")
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--output", type=Path, help="write the rows as JSON")
    args = parser.parse_args(argv)
    rows = measure(args.seconds, args.eval_dir)
    print(render(rows))
    for row in rows:
        if row["texts"]:
            print(f"{row['input']}: {row['texts']}")
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
