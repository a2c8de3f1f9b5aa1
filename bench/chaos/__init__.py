"""`python -m bench chaos`: no final is lost or duplicated when a part of the platform fails (issue 14).

N resuming clients stream real speech in real time (the eval clips, ~1.5 s of silence between
them, so each clip is one utterance) while one fault is injected per scenario:

- pg-stall: PostgreSQL's session and segment tables locked (ACCESS EXCLUSIVE) for --stall-s;
- redis-restart (celery): the run's own redis-server SIGKILLed, restarted on its port ~3 s later;
- worker-kill9 (celery): the inference worker with the most sessions SIGKILLed;
- gateway-kill9: the gateway SIGKILLed and a new one started on its port (same outbox dir);
  the clients reconnect and resume (protocol v1 `resume`).

Counted per scenario: expected (clips streamed), sent (distinct finals the clients got), stored
(segment rows of those sessions), lost (clips no stored final overlaps), duplicated (stored finals
overlapping another of the same session by more than half, plus segment numbers the clients got
twice with different text). Everything runs on a database of its own (--database, default
asrchaos) and, for Celery, a redis-server of its own on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.evaluation import ClipSpan, ConcatenatedSession, concatenate_clips, load_manifest

from ..cluster import DEFAULT_PG_URL
from ..server import ROOT, ServerError
from .client import StreamLog, run_clients
from .platform import INJECT, platform

logger = logging.getLogger("bench.chaos")

DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval" / "real"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "chaos.json"
FAULTS = {"a": "pg-stall", "b": "redis-restart", "c": "worker-kill9", "d": "gateway-kill9"}
CELERY_ONLY = {"redis-restart", "worker-kill9"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__)
    p.add_argument("--faults", default="a,b,c,d", help="letters or names, comma-separated (default a,b,c,d)")
    p.add_argument("--dispatch", choices=("local", "celery", "both"), default="both", help="default both")
    p.add_argument("--streams", type=int, default=3, help="concurrent resuming clients (default 3)")
    p.add_argument("--audio-s", type=float, default=60.0, help="speech + gaps per stream, about (default 60)")
    p.add_argument("--gap-s", type=float, default=1.5, help="silence between clips (default 1.5)")
    p.add_argument("--fault-at-s", type=float, default=20.0, help="when the fault strikes (default 20)")
    p.add_argument("--stall-s", type=float, default=30.0, help="pg-stall: how long the lock is held")
    p.add_argument("--workers", type=int, default=2, help="celery: inference workers (default 2)")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server, default {DEFAULT_PG_URL}")
    p.add_argument("--database", default="asrchaos", help="the run's own database (default %(default)s)")
    p.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("-v", "--verbose", action="store_true", help="log the clients' progress")
    return p


# --- counting ------------------------------------------------------------------------------------


def _stored(args: argparse.Namespace, session_ids: list[str], wait_s: float = 60.0) -> tuple[list[tuple], dict]:
    """Segment rows and session (status, close reason), once every session is closed or `wait_s` passed."""
    import psycopg

    url = f"{args.pg_url.rstrip('/')}/{args.database}"
    deadline = time.monotonic() + wait_s
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        while True:
            rows = conn.execute(
                "SELECT id::text, status, close_reason FROM transcription_session WHERE id::text = ANY(%s)",
                (session_ids,),
            ).fetchall()
            sessions = {r[0]: {"status": r[1], "close_reason": r[2]} for r in rows}
            if all(s["status"] == "closed" for s in sessions.values()) or time.monotonic() > deadline:
                break
            time.sleep(1)
        segments = conn.execute(
            'SELECT session_id::text, index, start, "end", text FROM transcription_segment '
            "WHERE session_id::text = ANY(%s) ORDER BY session_id, index",
            (session_ids,),
        ).fetchall()
    return segments, sessions


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def count(clips: list[ClipSpan], logs: list[StreamLog], segments: list[tuple]) -> dict[str, Any]:
    by_session: dict[str, list[tuple]] = {}
    for row in segments:
        by_session.setdefault(row[0], []).append(row)
    lost: list[dict[str, Any]] = []
    duplicated: list[dict[str, Any]] = []
    for log in logs:
        rows = by_session.get(log.session_id or "", [])
        for clip in clips:
            if not any(_overlap((clip.start_s, clip.end_s), (r[2], r[3])) > 0 for r in rows):
                lost.append({"stream": log.label, "session": log.session_id, "clip": clip.name})
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                shorter = min(a[3] - a[2], b[3] - b[2])
                if shorter > 0 and _overlap((a[2], a[3]), (b[2], b[3])) > shorter / 2:
                    duplicated.append({"session": log.session_id, "segments": [a[1], b[1]], "texts": [a[4], b[4]]})
        for conflict in log.conflicts:
            duplicated.append({"session": log.session_id, "client_conflict": conflict})
    return {
        "expected": len(clips) * len(logs),
        "sent": sum(len(log.finals) for log in logs),
        "stored": len(segments),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "lost_clips": lost,
        "duplicates": duplicated,
    }


# --- a scenario ----------------------------------------------------------------------------------


def _audio(args: argparse.Namespace) -> ConcatenatedSession:
    """The eval clips in manifest order, as many as fit in about --audio-s."""
    entries = load_manifest(args.eval_dir)
    session = concatenate_clips(entries, gap_s=args.gap_s)
    while session.duration_s > args.audio_s and len(entries) > 1:
        entries = entries[:-1]
        session = concatenate_clips(entries, gap_s=args.gap_s)
    return session


def run_scenario(args: argparse.Namespace, fault: str, dispatch: str, audio: ConcatenatedSession) -> dict[str, Any]:
    pcm = (np.clip(audio.audio, -1, 1) * 32767).astype("<i2").tobytes()
    with tempfile.TemporaryDirectory(prefix=f"asr-chaos-{fault}-") as tmp:
        workdir = Path(tmp)
        notes: list[str] = []
        result: dict[str, Any] = {"scenario": fault, "dispatch": dispatch, "streams": args.streams}
        print(f"[{fault} / {dispatch}] starting the platform ...", file=sys.stderr)
        try:
            with platform(args, dispatch, workdir) as target:
                print(
                    f"[{fault} / {dispatch}] streaming {audio.duration_s:.0f} s x {args.streams} ...", file=sys.stderr
                )

                def strike() -> None:
                    time.sleep(args.fault_at_s)
                    try:
                        INJECT[fault](args, target, notes)
                    except Exception as exc:
                        notes.append(f"fault injection failed: {type(exc).__name__}: {exc}")
                        logger.exception("fault %s", fault)

                striker = threading.Thread(target=strike, daemon=True)
                striker.start()
                logs = asyncio.run(run_clients(target.url, target.api_key, pcm, args.streams))
                striker.join()
                session_ids = [log.session_id for log in logs if log.session_id]
                segments, sessions = _stored(args, session_ids)
        except ServerError as exc:
            result["error"] = str(exc)
            _keep_logs(args, workdir, fault, dispatch)
            return result
        _keep_logs(args, workdir, fault, dispatch)
    result.update(count(audio.clips, logs, segments))
    result["close_reasons"] = dict(Counter(s["close_reason"] or s["status"] for s in sessions.values()))
    result["fault"] = notes
    result["clients"] = [
        {
            "stream": log.label,
            "session": log.session_id,
            "finals": len(log.finals),
            "received": log.received,
            "connections": log.connections,
            "resumes": log.resumes,
            "drops": log.drops,
            "errors": log.errors,
            "closed": log.closed,
            "gave_up": log.gave_up,
        }
        for log in logs
    ]
    return result


def _keep_logs(args: argparse.Namespace, workdir: Path, fault: str, dispatch: str) -> None:
    """The run's server, worker and Redis logs, next to the results (bench/results/chaos-logs/)."""
    target = args.output.parent / "chaos-logs" / f"{dispatch}-{fault}"
    target.mkdir(parents=True, exist_ok=True)
    for path in workdir.glob("*.log"):
        shutil.copyfile(path, target / path.name)


def render(results: list[dict[str, Any]]) -> str:
    columns = ("scenario", "dispatch", "streams", "expected", "sent", "stored", "lost", "duplicated")
    lines = [" | ".join(f"{c:>13}" for c in columns)]
    for r in results:
        lines.append(" | ".join(f"{r.get(c, '-')!s:>13}" for c in columns))
    for r in results:
        reasons = ", ".join(f"{k}: {v}" for k, v in r.get("close_reasons", {}).items())
        lines.append(f"{r['scenario']} / {r['dispatch']}: close reasons {reasons or '-'} {r.get('error', '')}")
        lines += [f"    {note}" for note in r.get("fault", [])]
        lines += [f"    {_client_line(c)}" for c in r.get("clients", [])]
    return "\n".join(lines)


def _client_line(c: dict[str, Any]) -> str:
    resumes = ", ".join(f"from {x['resume_from_s']} s at {x['at_s']} s" for x in c["resumes"]) or "none"
    errors = ", ".join(e.get("code", "?") for e in c["errors"]) or "none"
    end = "closed" if c["closed"] else f"gave up: {c['gave_up']}"
    counts = f"{c['finals']} finals, {c['connections']} connections"
    return f"{c['stream']}: {counts}, resumes {resumes}, errors {errors}, {end}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(
        stream=sys.stderr,
        format="%(levelname)s %(name)s %(message)s",
        level=logging.INFO if args.verbose else logging.WARNING,
    )
    wanted = [FAULTS.get(f.strip(), f.strip()) for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in INJECT]
    if unknown:
        print(f"error: unknown fault(s) {unknown}; choose from {FAULTS}", file=sys.stderr)
        return 2
    dispatches = ("local", "celery") if args.dispatch == "both" else (args.dispatch,)
    plan = [(f, d) for d in dispatches for f in wanted if d == "celery" or f not in CELERY_ONLY]
    audio = _audio(args)
    print(f"{len(audio.clips)} clips, {audio.duration_s:.1f} s per stream; scenarios: {plan}", file=sys.stderr)
    results = []
    for fault, dispatch in plan:
        results.append(run_scenario(args, fault, dispatch, audio))
        print(render(results[-1:]), file=sys.stderr)
    print(render(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "audio_s": round(audio.duration_s, 2),
        "clips": [{"name": c.name, "start_s": c.start_s, "end_s": c.end_s} for c in audio.clips],
        "results": results,
    }
    args.output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}", file=sys.stderr)
    return 1 if any(r.get("lost") or r.get("duplicated") or r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
