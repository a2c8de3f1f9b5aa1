"""Real eval clips as the tests send them: float32 in [-1, 1] at 16 kHz, or pcm_s16le bytes."""

from pathlib import Path

import numpy as np

from asrclient.wav import read_wav

RATE = 16000


def to_s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def wav_float32(path: Path) -> np.ndarray:
    """A 16-bit WAV file's samples as float32."""
    return read_wav(path).samples.astype(np.float32) / 32768.0


def clip(eval_dir: Path, name: str) -> np.ndarray:
    """One clip of ``eval_dir``/real as float32."""
    return wav_float32(eval_dir / "real" / name)


def clips(eval_dir: Path, names: list[str], *, gap_s: float) -> np.ndarray:
    """The clips in order, each followed by ``gap_s`` of silence."""
    return np.concatenate([part for name in names for part in (clip(eval_dir, name), silence(gap_s))])


def clips_s16(eval_dir: Path, names: list[str], *, gap_s: float) -> bytes:
    """`clips` as pcm_s16le bytes, ready to send."""
    return to_s16(clips(eval_dir, names, gap_s=gap_s))
