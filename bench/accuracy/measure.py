"""Streamed and offline figures for one condition and one system, on the same clips."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from asrclient.wav import read_wav
from bench.accuracy.plan import EvalCondition, System
from bench.evaluation import ManifestEntry, character_error_rate, word_error_rate
from bench.models import stream_clip
from transcription.engine import SessionLimits
from transcription.engine.models import EngineModels


@dataclass(frozen=True)
class Side:
    """Streamed or offline: error rate, and CPU seconds (all threads) per second of the clips' audio."""

    error_rate: float
    cpu_s: float
    rtf: float
    hypotheses: list[str]


@dataclass(frozen=True)
class Row:
    condition: str
    label: str
    system: str
    metric: str  # WER | CER
    clips: list[str]
    audio_s: float
    streamed: Side
    offline: Side
    references: list[str] = field(repr=False)

    @property
    def gap_points(self) -> float:
        """Streamed minus offline, in percentage points: what streaming costs on top of the model."""
        return 100 * (self.streamed.error_rate - self.offline.error_rate)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"gap_points": round(self.gap_points, 2)}


def score(condition: EvalCondition, references: list[str], hypotheses: list[str]) -> float:
    rate = character_error_rate if condition.metric == "CER" else word_error_rate
    return round(rate(references, hypotheses), 4)


def audio_seconds(clips: list[ManifestEntry]) -> float:
    return sum(read_wav(c.audio_path).duration_s for c in clips)


def stream_condition(
    models: EngineModels, limits: SessionLimits, system: System, condition: EvalCondition, clips: list[ManifestEntry]
) -> tuple[list[str], float]:
    """Each clip its own engine session, as ``python -m bench.models`` streams it; CPU of this process."""
    joiner = "" if condition.language == "zh" else " "
    hypotheses, cpu = [], 0.0
    for clip in clips:
        began = time.process_time()
        start = system.start(condition.language)
        finals, _wall = stream_clip(
            models, limits, clip, start, final_model=system.final_model, final_choice=system.final_choice
        )
        cpu += time.process_time() - began
        hypotheses.append(joiner.join(f.text for f in finals))
    return hypotheses, cpu


def side(condition: EvalCondition, references: list[str], hypotheses: list[str], cpu_s: float, audio_s: float) -> Side:
    return Side(score(condition, references, hypotheses), round(cpu_s, 3), round(cpu_s / audio_s, 4), hypotheses)


def make_row(
    condition: EvalCondition,
    system: System,
    clips: list[ManifestEntry],
    streamed: tuple[list[str], float],
    offline: dict[str, Any],
) -> Row:
    references = [c.text for c in clips]
    audio_s = audio_seconds(clips)
    return Row(
        condition=condition.name,
        label=condition.label,
        system=system.name,
        metric=condition.metric,
        clips=[c.name for c in clips],
        audio_s=round(audio_s, 2),
        streamed=side(condition, references, streamed[0], streamed[1], audio_s),
        offline=side(condition, references, offline["hypotheses"], offline["cpu_s"], audio_s),
        references=references,
    )
