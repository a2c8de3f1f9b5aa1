"""The offline reference: faster-whisper over each whole file, beam 5, in a process of its own.

Whole files, long ones too (faster-whisper's own 30 s seek with timestamps and previous-text
conditioning): what the model does with no streaming at all. A process of its own because one
that has loaded the engine's VAD (torch and its thread settings) decodes some clips differently
(bench.offline says more). Run as ``python -m bench.accuracy.offline`` with a JSON request on stdin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Job:
    key: str  # the condition's name
    language: str
    clips: tuple[str, ...]  # WAV paths


def decode_offline(model: str, jobs: list[Job], *, beam_size: int = 5) -> dict[str, dict[str, Any]]:
    """``{job.key: {"hypotheses": [...], "cpu_s": ...}}`` from a fresh Python process."""
    request = {"model": model, "beam_size": beam_size, "jobs": [j.__dict__ | {"clips": list(j.clips)} for j in jobs]}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.accuracy.offline"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"offline decode with {model} failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _load(name: str) -> Any:
    from faster_whisper import WhisperModel

    from transcription.engine.models import ModelSettings, limit_blas_threads, model_registry

    info = model_registry(ModelSettings()).get(name)
    if info is None or not info.available or info.engine != "whisper":
        raise SystemExit(f"model {name!r} is not an installed Whisper model")
    threads = os.cpu_count() or 1
    model = WhisperModel(info.path, device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True)
    limit_blas_threads()  # as the engine runs it: the CPU figures compare
    return model


def _samples(path: str) -> np.ndarray:
    from asrclient.wav import read_wav

    return read_wav(path).samples.astype(np.float32) / 32768.0


def main() -> None:
    request = json.loads(sys.stdin.read())
    model, beam = _load(request["model"]), int(request["beam_size"])
    jobs = [Job(j["key"], j["language"], tuple(j["clips"])) for j in request["jobs"]]

    def decode(audio: np.ndarray, language: str) -> str:
        segments, _info = model.transcribe(audio, language=language, beam_size=beam, vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()

    if jobs and jobs[0].clips:  # the first decode sets up buffers; keep it out of the figures
        decode(_samples(jobs[0].clips[0])[: 16000 * 5], jobs[0].language)
    results = {}
    for job in jobs:
        hypotheses, cpu = [], 0.0
        for path in job.clips:
            audio = _samples(path)
            began = time.process_time()
            hypotheses.append(decode(audio, job.language))
            cpu += time.process_time() - began
        results[job.key] = {"hypotheses": hypotheses, "cpu_s": round(cpu, 3)}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
