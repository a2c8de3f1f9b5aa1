"""Debian's Chromium driven by Playwright, with a WAV file as its microphone (not a test module).

Never a browser download: Playwright's Python package drives the system Chromium given by
``CHROMIUM`` (default /usr/bin/chromium; `apt-get install chromium`). Each launch gets a fresh
profile (Playwright's temporary user-data-dir).
"""

import os
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from asrclient.wav import read_wav
from bench.evaluation import load_manifest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SAMPLE_RATE = 16000
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM).")
    return path


def launch(
    playwright, *, microphone_wav: Path | None = None, fake_microphone: bool = False, grant_microphone: bool = True
):
    """A headless Chromium; with ``microphone_wav`` its microphone plays that file once, then silence."""
    args = list(BASE_ARGS)
    if microphone_wav is not None or fake_microphone:
        args.append("--use-fake-device-for-media-stream")
    if microphone_wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone_wav}%noloop")
    if grant_microphone:
        args.append("--use-fake-ui-for-media-stream")
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)


@dataclass(frozen=True)
class Utterance:
    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class MicrophoneTrack:
    path: Path
    duration_s: float
    utterances: list[Utterance]

    @property
    def references(self) -> list[str]:
        return [u.text for u in self.utterances]


def build_track(
    eval_dir: Path,
    names: list[str],
    path: Path,
    *,
    lead_s: float = 1.0,
    gap_s: float = 2.0,
    tail_s: float = 4.0,
    subset: str = "real",
) -> MicrophoneTrack:
    """Real clips from the eval set (``subset``: ``real`` English, ``zh`` Mandarin) with silences
    between them, as one 16 kHz mono WAV."""
    texts = {entry.name: entry.text for entry in load_manifest(eval_dir / subset)}
    parts = [np.zeros(round(lead_s * SAMPLE_RATE), np.int16)]
    utterances, position = [], len(parts[0])
    for index, name in enumerate(names):
        if index:
            parts.append(np.zeros(round(gap_s * SAMPLE_RATE), np.int16))
            position += len(parts[-1])
        samples = read_wav(eval_dir / subset / name).samples.astype(np.int16)
        parts.append(samples)
        utterances.append(Utterance(texts[name], position / SAMPLE_RATE, (position + len(samples)) / SAMPLE_RATE))
        position += len(samples)
    parts.append(np.zeros(round(tail_s * SAMPLE_RATE), np.int16))
    pcm = np.concatenate(parts)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return MicrophoneTrack(path, len(pcm) / SAMPLE_RATE, utterances)
