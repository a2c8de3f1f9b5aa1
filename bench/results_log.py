"""Every `python -m bench load` run as data: one entry per system appended to a JSON list.

README tables cannot be compared run against run; ``docs/benchmarks/results.json`` can. An entry
holds what decides a capacity figure: the code (commit, and whether the tree differed from it),
the system and how it dispatched, the models, the machine's speed, the SLO, and each level's
figures. The machine's speed is `python -m bench`'s measure — server CPU seconds per second of one
real-time stream — taken on our embedded or Celery server at the start of the run, since machines
of one kind differ by about 1.7 times.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .server import ROOT

DEFAULT_RESULTS = ROOT / "docs" / "benchmarks" / "results.json"
# Level figures kept in an entry: enough to redraw the README table, not every session.
LEVEL_KEYS = ("n", "audio_s", "wer", "errors", "slo_ok", "slo_failures")


def code_state() -> dict[str, Any]:
    """The commit, and whether the working tree differed from it (then the figures are not its own)."""

    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "transcription", "asrplatform", "bench")
    return {"commit": git("rev-parse", "--short=12", "HEAD") or None, "tree_differs": bool(changed)}


def system_of(target_name: str) -> str:
    """asrplatform, whisperlive or whisperlivekit, from the target's display name."""
    lowered = target_name.lower()
    for peer in ("whisperlivekit", "whisperlive"):
        if peer in lowered:
            return peer
    return "asrplatform"


def level_summary(level: dict[str, Any]) -> dict[str, Any]:
    final, gap, server = level["final_latency_ms"], level["partial_gap_in_speech_ms"], level["server"]
    return {
        **{key: level.get(key) for key in LEVEL_KEYS},
        "final_ms": {k: final.get(k) for k in ("p50", "p95", "max")},
        "partial_gap_ms": {k: gap.get(k) for k in ("p95", "max")},
        "first_partial_p50_ms": level["first_partial_ms"].get("p50"),
        "cpu_pct": server.get("cpu_pct"),
        "cpu_s_per_audio_s": server.get("cpu_s_per_audio_s"),
    }


def entry(
    figures: dict[str, Any], *, config: dict[str, Any], machine_speed: float | None, code: dict[str, Any]
) -> dict[str, Any]:
    """One system's run: ``figures`` as `bench load` writes them for it (target, levels, capacity)."""
    target = figures["target"]
    system = system_of(target["name"])
    ours = system == "asrplatform"
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **code,
        "system": system,
        "target": target["name"],
        "dispatch": config["dispatch"] if ours else None,
        "workers": target.get("workers") if ours else None,  # Celery inference workers; None embedded
        "protocol": config["protocol"] if ours else target["name"],
        # --multichannel: stereo sessions, each channel transcribed apart; capacity counts sessions
        "multichannel": bool(config.get("multichannel", False)),
        "model": os.environ.get("ASR_MODEL", "tiny.en"),
        "final_model": (os.environ.get("ASR_FINAL_MODEL") or None) if ours else None,
        "final_choice": (os.environ.get("ASR_FINAL_CHOICE") or None) if ours else None,
        "device": os.environ.get("ASR_DEVICE", "cpu") if ours else None,
        # cross-session batching (ASR_BATCH_WINDOW_MS; 0: off)
        "batch_window_ms": int(os.environ.get("ASR_BATCH_WINDOW_MS") or 0) if ours else None,
        "machine": {"cpu_count": config["cpu_count"], "cpu_s_per_audio_s": machine_speed},
        "load": {k: config[k] for k in ("session_s", "gap_s", "ramp_s", "seed", "chunk_ms", "endpointing_ms")},
        "slo": figures["slo"],
        "levels": [level_summary(level) for level in figures["levels"]],
        "capacity": figures["capacity"],
        "first_failing_n": figures["first_failing_n"],
    }


def append(path: Path, entries: list[dict[str, Any]]) -> None:
    """Add ``entries`` to the JSON list at ``path`` (created if missing); a file that is not a list is an error."""
    runs: list[dict[str, Any]] = []
    if path.exists():
        loaded = json.loads(path.read_text() or "[]")
        if not isinstance(loaded, list):
            raise ValueError(f"{path} does not hold a JSON list")
        runs = loaded
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([*runs, *entries], indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
