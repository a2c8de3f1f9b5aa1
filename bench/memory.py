"""`python -m bench memory`: does the server's memory grow with the number of sessions it has served?

Against one server (embedded by default, or Celery dispatch with its workers), after a warm-up:
--sessions short sessions one after another, each one real clip (the cards-* clips in turn, sent
as fast as the server takes them). Resident memory of the gateway (and of each worker) before,
every --every sessions, and after the server has settled; growth is after minus before. The
--warmup-sessions before them are the same kind of session, and their growth is printed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from asrclient import StreamError, WavAudio, WavError, read_wav
from bench.evaluation import load_manifest

from .load import MIB, settle, warm_up
from .server import ServerError, memory_bytes
from .targets import Target, add_target_arguments, open_target, start_run

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench memory", description=__doc__)
    add_target_arguments(p)
    p.add_argument("--sessions", type=int, default=500, help="sessions in all (default 500)")
    p.add_argument("--every", type=int, default=100, help="print RSS every this many sessions (default 100)")
    p.add_argument(
        "--warmup-sessions",
        type=int,
        default=100,
        help="sessions run first and reported apart (default 100): the server's pools fill on first use",
    )
    p.add_argument("--clips", default="cards-", help="clips whose name starts with this (default cards-)")
    p.add_argument("--realtime", action="store_true", help="pace in real time (default: as fast as possible)")
    p.add_argument("--settle-timeout-s", type=float, default=60.0, help="wait for an idle server (default 60)")
    p.add_argument("--output", type=Path, help="JSON results (default bench/results/memory.json)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return p


def snapshot(target: Target, sessions: int) -> dict[str, Any]:
    """RSS and lifetime peak of every measured process, in MiB."""
    row: dict[str, Any] = {"sessions": sessions, "rss_mib": {}, "peak_rss_mib": {}}
    for role, pid in target.pids.items():
        try:
            m = memory_bytes(pid)
        except OSError:
            continue  # the process is gone; the missing role says so
        row["rss_mib"][role] = round(m["rss"] / MIB, 1)
        row["peak_rss_mib"][role] = round(m["peak_rss"] / MIB, 1)
    return row


def _line(row: dict[str, Any]) -> str:
    cells = ", ".join(f"{role} {rss:.1f}" for role, rss in row["rss_mib"].items()) or "not measured"
    return f"{row['sessions']:>6} sessions: RSS MiB {cells}"


async def _run(
    target: Target, clips: list[WavAudio], args: argparse.Namespace, sessions: int, on_every: Any
) -> tuple[int, list[str]]:
    """``sessions`` sessions one after another; returns the error count and the first errors."""
    options = {"endpointing_ms": args.endpointing_ms, "language": "en", "interim_results": True}
    errors = 0
    first: list[str] = []
    for i in range(sessions):
        try:
            result = await target.stream(
                clips[i % len(clips)], chunk_ms=args.chunk_ms, realtime=args.realtime, start_options=options
            )
            problem = result.problem() or (None if result.of_type("final") else "no final")
        except StreamError as exc:
            problem = str(exc)
        if problem:
            errors += 1
            if len(first) < 5:
                first.append(f"session {i + 1}: {problem}")
        if (i + 1) % args.every == 0 and i + 1 < sessions:
            on_every(i + 1)
    return errors, first


def measure(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    entries = load_manifest(args.eval_dir)
    chosen = [e for e in entries if e.name.startswith(args.clips)] or entries[:1]
    clips = [read_wav(e.audio_path) for e in chosen]
    options = {
        "chunk_ms": args.chunk_ms,
        "start_options": {"endpointing_ms": args.endpointing_ms, "language": "en", "interim_results": True},
        "drain_timeout": 60.0,
    }
    warmup = warm_up(target, entries, options)
    if warmup:
        print(f"warning: warm-up session: {warmup}", file=sys.stderr)
    settle(target, timeout_s=args.settle_timeout_s)
    warm = {"sessions": args.warmup_sessions, "before": snapshot(target, 0)}
    if args.warmup_sessions:
        # Reported apart, not hidden: the first sessions fill what the server keeps for good (its
        # thread pools' threads, each with its own malloc arena; the decoder's buffers for each
        # window size); what follows shows whether anything grows per session after that.
        print(f"warm-up: {args.warmup_sessions} sessions ...", file=sys.stderr)
        warm_errors, warm_first = asyncio.run(_run(target, clips, args, args.warmup_sessions, lambda done: None))
        settle(target, timeout_s=args.settle_timeout_s)
        if warm_errors:
            warmup = "; ".join(filter(None, [warmup, f"{warm_errors} warm-up sessions failed: {warm_first}"]))
    rows = [snapshot(target, 0)]
    warm["after"] = rows[0]
    print(_line(rows[0]), file=sys.stderr)

    def on_every(done: int) -> None:
        rows.append(snapshot(target, done))
        print(_line(rows[-1]), file=sys.stderr)

    started = time.monotonic()
    errors, first = asyncio.run(_run(target, clips, args, args.sessions, on_every))
    wall = time.monotonic() - started
    settled = settle(target, timeout_s=args.settle_timeout_s)
    rows.append(snapshot(target, args.sessions))
    print(_line(rows[-1]), file=sys.stderr)
    before, after = rows[0]["rss_mib"], rows[-1]["rss_mib"]
    return {
        "warmup_problem": warmup,
        "warmup": {
            "sessions": warm["sessions"],
            "growth_mib": {
                role: round(warm["after"]["rss_mib"][role] - warm["before"]["rss_mib"][role], 1)
                for role in warm["before"]["rss_mib"]
                if role in warm["after"]["rss_mib"]
            },
        },
        "clips": [e.name for e in chosen],
        "wall_s": round(wall, 1),
        "settle_after": settled,
        "samples": rows,
        "growth_mib": {role: round(after[role] - before[role], 1) for role in before if role in after},
        "errors": errors,
        "first_errors": first,
    }


def render(figures: dict[str, Any]) -> str:
    lines = [
        f"memory - {figures['target']}: {figures['sessions']} sessions one after another "
        f"({', '.join(figures['clips'])}; {figures['wall_s']:.0f} s)",
        f"before them, {figures['warmup']['sessions']} warm-up sessions: "
        + (", ".join(f"{role} {mib:+.1f}" for role, mib in figures["warmup"]["growth_mib"].items()) or "not measured")
        + " MiB",
        *(_line(row) for row in figures["samples"]),
        "growth (after - before), MiB: "
        + (", ".join(f"{role} {mib:+.1f}" for role, mib in figures["growth_mib"].items()) or "not measured"),
        f"errors: {figures['errors']}",
        *(f"  {e}" for e in figures["first_errors"]),
    ]
    if figures["warmup_problem"]:
        lines.append(f"WARM-UP PROBLEM: {figures['warmup_problem']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (code := start_run(args, "memory")) is not None:
        return code
    if args.peer:
        print("error: --peer is for `python -m bench load`; the memory run measures our server", file=sys.stderr)
        return 2
    if args.sessions < 1 or args.every < 1 or args.warmup_sessions < 0:
        print("error: --sessions and --every are at least 1, --warmup-sessions at least 0", file=sys.stderr)
        return 2
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        with open_target(args, args.output.parent) as target:
            outcome = measure(target, args)
    except (StreamError, ServerError, WavError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figures = {
        "created": started,
        "target": target.name,
        "sessions": args.sessions,
        "realtime": args.realtime,
        "chunk_ms": args.chunk_ms,
        **outcome,
    }
    print(render(figures))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}", file=sys.stderr)
    return 0 if not figures["errors"] else 1
