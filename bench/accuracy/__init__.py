"""`python -m bench accuracy`: streamed vs offline error rate per condition and model, with RTF.

Conditions (``--conditions``): ``clean`` (real/), noise on real/ (``white-20db``, ``white-10db``,
``babble-20db``, ``music-20db``, any ``KIND-SNRdb`` or ``level-6dbfs``, made by bench.noise under
var/eval-variants), ``long`` (long/, each file one session), ``zh`` (zh/ + zh-read/, CER). Each
clip is its own engine session (``bench.models.stream_clip``: FSMN-VAD endpointing, the server's
StreamingSession and default settings, fed as fast as it goes, finals only); the offline reference
is the model that writes the finals decoding each whole file with faster-whisper, beam 5
(bench.accuracy.offline). RTF is CPU seconds (all threads) per second of the clips' audio.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.accuracy.measure import Row, make_row, stream_condition
from bench.accuracy.offline import Job, decode_offline
from bench.accuracy.plan import (
    DEFAULT_CONDITIONS,
    EvalCondition,
    System,
    condition_clips,
    parse_condition,
    parse_pairing,
)
from bench.accuracy.report import render, targets
from bench.evaluation import ManifestEntry
from bench.noise import SHARED_EVAL, VARIANTS_DIR
from transcription.engine import SessionLimits
from transcription.engine.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "accuracy.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench accuracy", description=__doc__)
    p.add_argument(
        "--models", default="tiny.en,base", help="comma-separated (default tiny.en,base; missing ones skipped)"
    )
    p.add_argument(
        "--pairings",
        default="",
        help="PARTIAL+FINAL or PARTIAL|FINAL,... e.g. tiny.en+base (two-pass: the final model decodes finals), "
        "tiny.en|base (both decode each final, the surer is kept)",
    )
    p.add_argument("--conditions", default=",".join(DEFAULT_CONDITIONS), help="default %(default)s")
    p.add_argument("--quick", action="store_true", help="5 clips of real/, gates-ted of long/, 1 + 1 Mandarin")
    p.add_argument("--limit", type=int, help="at most this many clips of each set")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--offline-beam", type=int, default=5, help="beam of the offline reference (default 5)")
    p.add_argument(
        "--no-context", dest="context", action="store_false", help="no context across utterances (ASR_CONTEXT=false)"
    )
    p.add_argument("--eval-dir", type=Path, default=SHARED_EVAL, help="default ../shared/eval")
    p.add_argument("--variants-dir", type=Path, default=VARIANTS_DIR, help="noisy copies (default var/eval-variants)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default bench/results/accuracy.json")
    return p


def _systems(args: argparse.Namespace, registry: ModelRegistry) -> tuple[list[System], list[str]]:
    """The systems to run, and notes on what was asked for but is not installed here."""
    systems, notes = [], []
    asked = [System(m.strip()) for m in args.models.split(",") if m.strip()]
    asked += [parse_pairing(p.strip()) for p in args.pairings.split(",") if p.strip()]
    for system in asked:
        missing = [m for m in (system.model, system.final_model) if m and not _installed(registry, m)]
        if missing:
            notes.append(f"{system.name}: model {', '.join(missing)} not installed here; skipped")
        else:
            systems.append(system)
    return systems, notes


def _installed(registry: ModelRegistry, name: str) -> bool:
    info = registry.get(name)
    return info is not None and info.available


def _runs(system: System, condition: EvalCondition, registry: ModelRegistry) -> bool:
    """English-only models sit out the Mandarin sets."""
    names = filter(None, (system.model, system.final_model))
    return all(condition.language in registry.by_name[m].languages for m in names)


def _code_state() -> dict[str, Any]:
    """The commit, and the engine files that differ from it: the tree may hold others' work in progress."""

    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip()

    changes = git("status", "--short", "--", "transcription/engine").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "engine_changes": changes}


def measure(args: argparse.Namespace, conditions: list[EvalCondition]) -> tuple[list[Row], list[str], str]:
    from transcription.engine.models import ModelSettings, load_models

    models = load_models(ModelSettings())
    registry = models.registry()
    limits = SessionLimits(
        models=registry.models,
        default_model=registry.default,
        default_context=args.context,
    )
    systems, notes = _systems(args, registry)
    clips: dict[str, list[ManifestEntry]] = {
        c.name: condition_clips(c, args.eval_dir, args.variants_dir, seed=args.seed, quick=args.quick, limit=args.limit)
        for c in conditions
    }
    plan = [(c, s) for c in conditions for s in systems if _runs(s, c, registry)]
    streamed, warmed = {}, set()
    for condition, system in plan:
        if system.name not in warmed:  # a model's first session loads it: not in the figures
            stream_condition(models, limits, system, condition, clips[condition.name][:1])
            warmed.add(system.name)
        began = time.monotonic()
        streamed[condition.name, system.name] = stream_condition(
            models, limits, system, condition, clips[condition.name]
        )
        print(f"streamed {condition.name} with {system.name}: {time.monotonic() - began:.0f} s", file=sys.stderr)
    references: dict[str, list[EvalCondition]] = {}  # offline model → the conditions it decodes
    for condition, system in plan:
        if condition not in references.setdefault(system.offline_model, []):
            references[system.offline_model].append(condition)
    offline: dict[str, dict[str, Any]] = {}
    for model, decoded in references.items():
        began = time.monotonic()
        jobs = [Job(c.name, c.language, tuple(str(e.audio_path) for e in clips[c.name])) for c in decoded]
        offline[model] = decode_offline(model, jobs, beam_size=args.offline_beam)
        print(f"offline with {model}: {time.monotonic() - began:.0f} s", file=sys.stderr)
    rows = [make_row(c, s, clips[c.name], streamed[c.name, s.name], offline[s.offline_model][c.name]) for c, s in plan]
    return rows, notes, registry.default


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s %(message)s", level=logging.WARNING)
    try:
        conditions = [parse_condition(c.strip()) for c in args.conditions.split(",") if c.strip()]
        for pairing in args.pairings.split(","):  # checked here, so a typo is an error, not a traceback
            if pairing.strip():
                parse_pairing(pairing.strip())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    rows, notes, default_model = measure(args, conditions)
    elapsed = time.monotonic() - started
    subset = "--quick subset" if args.quick else "all clips"
    if args.limit:
        subset += f", at most {args.limit} per set"
    header = (
        f"accuracy on {args.eval_dir} ({subset}; noise seed {args.seed}; {os.cpu_count()} CPUs; "
        f"context {'on' if args.context else 'off'}; "
        f"offline: whole files, beam {args.offline_beam}; {elapsed:.0f} s)"
    )
    print(render(rows, header=header))
    verdicts = targets(rows, default_model=default_model)
    if verdicts:
        print(f"\ntargets (default model {default_model}; on the clips above):")
        print("\n".join(f"  {line}" for line in verdicts))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    figures = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "code": _code_state(),
        "default_model": default_model,
        "elapsed_s": round(elapsed, 1),
        "rows": [r.as_dict() for r in rows],
        "targets": verdicts,
        "notes": notes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}", file=sys.stderr)
    return 0
