"""`python -m bench.models`: accuracy and speed of each recognizer model on the eval clips.

Every clip is its own session (0.5 s of silence before, 1.5 s after), streamed through the engine
(FSMN-VAD endpointing, the same StreamingSession the server runs) as fast as it will go, without
partials: the figure is what each model costs per audio second for its finals. English clips are
scored by WER (``normalize_text``), Mandarin clips by CER (``normalize_chinese``); with
``language: auto`` the detected language of every final is checked too.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.evaluation import (
    ManifestEntry,
    character_error_rate,
    concatenate_clips,
    load_manifest,
    word_error_rate,
)
from transcription.engine import SessionConfig, SessionLimits, StreamingSession, TranscriptEvent, parse_start
from transcription.engine.models import ModelSettings, load_models

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("ASR_EVAL_DIR", ROOT.parent / "shared" / "eval"))
FRAME_SAMPLES = 1600  # 100 ms frames


@dataclass
class Run:
    model: str
    language: str
    clips: str  # "en" | "zh"
    error_rate: float  # WER for en, CER for zh
    rtf: float  # engine seconds per audio second
    audio_s: float
    detected: dict[str, int]  # language of the finals → how many
    hypotheses: list[str]


def stream_clip(
    models,
    limits: SessionLimits,
    entry: ManifestEntry,
    start: dict,
    *,
    final_model: str = "",
    final_choice: str = "final_model",
) -> tuple[list[TranscriptEvent], float]:
    """``final_model``: finals by another model (a pairing), as the server's setting gives it, not a
    start field; ``final_choice`` "confident": by the surer of the two."""
    session = concatenate_clips([entry], gap_s=0.0, lead_s=0.5, tail_s=1.5)
    pcm = (session.audio * 32767).astype("<i2").tobytes()
    config = parse_start({"interim_results": False, **start}, limits)
    if final_model:
        config = SessionConfig.from_dict({**config.to_dict(), "final_model": final_model, "final_choice": final_choice})
    engine = StreamingSession(config, models)
    began = time.perf_counter()
    finals = []
    for i in range(0, len(pcm), FRAME_SAMPLES * 2):
        finals += engine.accept_audio(pcm[i : i + FRAME_SAMPLES * 2])
    finals += engine.finalize("stop")
    return finals, time.perf_counter() - began


def run(models, limits: SessionLimits, model: str, language: str, clips: str) -> Run:
    entries = load_manifest(EVAL_DIR / ("real" if clips == "en" else "zh"))
    hypotheses: list[str] = []
    detected: dict[str, int] = {}
    busy, audio = 0.0, 0.0
    for entry in entries:
        finals, seconds = stream_clip(models, limits, entry, {"model": model, "language": language})
        busy += seconds
        audio += concatenate_clips([entry], gap_s=0.0, lead_s=0.5, tail_s=1.5).duration_s
        joiner = "" if clips == "zh" else " "
        hypotheses.append(joiner.join(f.text for f in finals))
        for f in finals:
            detected[f.language or "?"] = detected.get(f.language or "?", 0) + 1
    references = [e.text for e in entries]
    score = character_error_rate if clips == "zh" else word_error_rate
    return Run(model, language, clips, score(references, hypotheses), busy / audio, audio, detected, hypotheses)


def render(runs: list[Run], threads: int) -> str:
    lines = [
        f"recognizer models on ../shared/eval ({threads} CPU threads, int8, one session at a time, no partials)",
        "",
        f"  {'model':<9}{'language':<10}{'clips':<12}{'WER/CER':>9}{'RTF':>8}  detected languages of finals",
    ]
    for r in runs:
        metric = f"{'CER' if r.clips == 'zh' else 'WER'} {100 * r.error_rate:.1f}%"
        clips = "14 English" if r.clips == "en" else "3 Mandarin"
        found = ", ".join(f"{k}×{v}" for k, v in sorted(r.detected.items()))
        lines.append(f"  {r.model:<9}{r.language:<10}{clips:<12}{metric:>9}{r.rtf:>8.3f}  {found}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--verbose", action="store_true", help="print every hypothesis")
    args = parser.parse_args()
    models = load_models(ModelSettings())
    registry = models.registry()
    limits = SessionLimits(models=registry.models, default_model=registry.default)
    plan = [("tiny.en", "en", "en")]
    base = registry.get("base")
    if base is not None and base.available:
        plan += [("base", "en", "en"), ("base", "auto", "en"), ("base", "zh", "zh"), ("base", "auto", "zh")]
    else:
        print("model 'base' is not installed: python manage.py asr_models install whisper-base")
    for model, _, _ in plan:  # load and warm up outside the timed runs
        entry = load_manifest(EVAL_DIR / "real")[0]
        stream_clip(models, limits, entry, {"model": model})
    runs = [run(models, limits, *p) for p in plan]
    print(render(runs, os.cpu_count() or 1))
    if args.verbose:
        for r in runs:
            print(f"\n{r.model} {r.language} {r.clips}:")
            print("\n".join(f"  {h}" for h in r.hypotheses))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in runs], ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
