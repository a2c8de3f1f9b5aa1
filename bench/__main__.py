"""`python -m bench`: run the benchmark, print the tables, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcription.client import (
    StreamError,
    StreamResult,
    WavAudio,
    WavError,
    read_wav,
    stream_audio,
)
from transcription.evaluation import (
    ConcatenatedSession,
    ManifestEntry,
    concatenate_clips,
    load_manifest,
)

from .metrics import analyse
from .offline import transcribe_clips
from .report import render
from .server import ROOT, EmbeddedServer, ServerError, cpu_seconds, memory_bytes

logger = logging.getLogger("bench")

DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval" / "real"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--url", help="benchmark a running server instead of starting one")
    p.add_argument("--api-key", default=os.environ.get("ASR_API_KEY"), help="key for --url")
    p.add_argument("--server-pid", type=int, help="pid of the --url server, to measure CPU/RSS")
    p.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR, help="clips + manifest")
    p.add_argument("--gap-s", type=float, default=1.0, help="silence between clips (default 1)")
    p.add_argument("--chunk-ms", type=int, default=100, help="audio per frame (default 100)")
    p.add_argument("--endpointing-ms", type=int, default=800, help="default 800")
    p.add_argument("--fast", action="store_true", help="send as fast as possible, not real time")
    p.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-up session")
    p.add_argument("--no-offline", action="store_true", help="skip the offline WER baseline")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    p.add_argument("-v", "--verbose", action="store_true", help="log finals as they arrive")
    return p


@dataclass(frozen=True)
class Target:
    """Where to stream and, when known, which process to measure."""

    url: str
    api_key: str
    pid: int | None


def _stream(
    args: argparse.Namespace,
    target: Target,
    audio: WavAudio,
    *,
    realtime: bool,
    drain_timeout: float = 120.0,
) -> StreamResult:
    def on_message(msg: dict[str, Any], arrival: float) -> None:
        if msg.get("type") in ("final", "error"):
            logger.info("%s", json.dumps(msg, ensure_ascii=False))

    options = {"endpointing_ms": args.endpointing_ms, "language": "en", "interim_results": True}
    return asyncio.run(
        stream_audio(
            target.url,
            target.api_key,
            audio,
            chunk_ms=args.chunk_ms,
            realtime=realtime,
            start_options=options,
            on_message=on_message,
            drain_timeout=drain_timeout,
        )
    )


def _measure(
    args: argparse.Namespace, target: Target, session: ConcatenatedSession, warmup: ManifestEntry
) -> tuple[StreamResult, dict[str, Any]]:
    """Warm up first (a first session's costs are not steady state), then the measured run."""
    server: dict[str, Any] = {"pid": target.pid, "warmup_problem": None}
    if not args.no_warmup:
        warm = _stream(args, target, read_wav(warmup.audio_path), realtime=True, drain_timeout=30)
        server["warmup_problem"] = warm.problem()
        if warm.problem():
            print(f"warning: warm-up session: {warm.problem()}", file=sys.stderr)
    audio = WavAudio.from_float(session.audio, session.sample_rate)
    pace = "as fast as possible" if args.fast else "in real time"
    print(f"streaming {audio.duration_s:.1f} s of audio {pace} ...", file=sys.stderr)
    cpu_before = cpu_seconds(target.pid) if target.pid else 0.0
    result = _stream(args, target, audio, realtime=not args.fast)
    if target.pid:
        cpu = cpu_seconds(target.pid) - cpu_before
        memory = memory_bytes(target.pid)
        server.update(
            cpu_s=round(cpu, 2),
            cpu_s_per_audio_s=round(cpu / audio.duration_s, 4),
            peak_rss_bytes=memory["peak_rss"],
            rss_bytes=memory["rss"],
        )
    return result, server


def _measure_embedded(
    args: argparse.Namespace, session: ConcatenatedSession, warmup: ManifestEntry
) -> tuple[StreamResult, dict[str, Any]]:
    """Start a private server; its log is kept next to the results for whoever reads them."""
    with tempfile.TemporaryDirectory(prefix="asr-bench-") as tmp:
        server = EmbeddedServer(Path(tmp))
        print(f"starting the embedded server on port {server.port} ...", file=sys.stderr)
        try:
            with server:
                target = Target(server.url, server.api_key, server.pid)
                result, stats = _measure(args, target, session, warmup)
        except (StreamError, ServerError):
            print(f"server log (last lines):\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            if server.log_path.exists():
                shutil.copyfile(server.log_path, args.output.parent / "server.log")
        if result.problem():
            print(f"server log (last lines):\n{server.log_tail()}", file=sys.stderr)
        return result, stats


def _timeline(result: StreamResult) -> list[dict[str, Any]]:
    """Every server message with its arrival in seconds after streaming began, for debugging."""
    origin = result.started_at or (result.messages[0].arrival if result.messages else 0.0)
    return [{"t": round(m.arrival - origin, 3), **m.data} for m in result.messages]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s %(message)s", level=level)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    if args.url and not args.api_key:
        print("error: --url needs --api-key (or ASR_API_KEY)", file=sys.stderr)
        return 2
    entries = load_manifest(args.eval_dir)
    session = concatenate_clips(entries, gap_s=args.gap_s)
    try:
        if args.url:
            target = Target(args.url, args.api_key, args.server_pid)
            result, server = _measure(args, target, session, entries[0])
        else:
            result, server = _measure_embedded(args, session, entries[0])
    except (StreamError, ServerError, WavError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    figures: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "eval_dir": str(args.eval_dir),
            "gap_s": args.gap_s,
            "chunk_ms": args.chunk_ms,
            "endpointing_ms": args.endpointing_ms,
            "realtime": not args.fast,
            "cpu_count": os.cpu_count(),
        },
        "audio_s": round(session.duration_s, 2),
        "problem": result.problem(),
        "stream": analyse(result, session),
        "server": server,
        "messages": _timeline(result),
    }
    if not args.no_offline:
        print("offline baseline ...", file=sys.stderr)
        figures["offline"] = transcribe_clips(entries)
    print(render(figures))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}", file=sys.stderr)
    return 1 if figures["problem"] else 0


if __name__ == "__main__":
    sys.exit(main())
