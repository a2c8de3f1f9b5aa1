"""`python -m bench`: run the benchmark, print the tables, write bench/results/latest.json.

`python -m bench load` sweeps concurrent streams up to the SLO (bench/load.py); `python -m bench
memory` watches the server's memory over many sessions (bench/memory.py). `python -m bench accuracy`
tables streamed vs offline error rates, clean and noisy (bench/accuracy/, bench/noise.py); `python -m
bench nonspeech` counts finals where nobody speaks (bench/nonspeech.py); `python -m bench codecs` what
decoding Opus and G.711 costs beside recognizing (bench/codecs.py).

`python -m bench --dispatch celery` runs the same stream twice in one run, first through the
embedded server, then through a gateway with Celery dispatch and two inference workers
(PostgreSQL + Redis), measures the gateway → worker → gateway hop with `asr.ping`, prints both
side by side and writes bench/results/celery.json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asrclient import (
    StreamError,
    StreamResult,
    WavAudio,
    WavError,
    read_wav,
    stream_audio,
)
from bench.evaluation import (
    ConcatenatedSession,
    ManifestEntry,
    concatenate_clips,
    load_manifest,
)

from .cluster import DEFAULT_DATABASE, DEFAULT_PG_URL, DEFAULT_REDIS_URL, stack_from_args
from .hop import HopProbe, measure_hop, setup_django
from .metrics import analyse, compare
from .offline import transcribe_clips_isolated
from .report import render, render_comparison
from .server import ROOT, EmbeddedServer, ServerError, cpu_seconds, memory_bytes

logger = logging.getLogger("bench")

DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval" / "real"
RESULTS = ROOT / "bench" / "results"
DEFAULT_OUTPUT = {"local": RESULTS / "latest.json", "celery": RESULTS / "celery.json"}


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
    p.add_argument(
        "--dispatch",
        choices=("local", "celery"),
        default="local",
        help="local: the embedded server only (default); celery: embedded, then Celery dispatch "
        "with inference workers on PostgreSQL + Redis, side by side, plus the worker hop",
    )
    c = p.add_argument_group("--dispatch celery")
    c.add_argument("--workers", type=int, default=2, help="inference worker processes (default 2)")
    c.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    c.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server, default {DEFAULT_PG_URL}")
    c.add_argument("--database", default=DEFAULT_DATABASE, help="created if missing (default %(default)s)")
    c.add_argument("--hop-count", type=int, default=500, help="asr.ping round trips (default 500)")
    c.add_argument("--hop-interval-ms", type=float, default=10.0, help="ping pacing (default 10)")
    c.add_argument(
        "--probe-interval-ms",
        type=float,
        default=200.0,
        help="during the Celery stream, ping every worker this often to time the hop under load (default 200; 0: off)",
    )
    c.add_argument("--worker-loglevel", default="INFO", help="workers' --loglevel (default INFO)")
    p.add_argument(
        "--output",
        type=Path,
        help="JSON results file (default bench/results/latest.json, or celery.json with --dispatch celery)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log finals as they arrive")
    return p


@dataclass(frozen=True)
class Target:
    """Where to stream and, when known, which process to measure."""

    url: str
    api_key: str
    pid: int | None
    worker_pids: dict[str, int] | None = None  # Celery dispatch: the inference workers


def _session(
    args: argparse.Namespace,
    target: Target,
    audio: WavAudio,
    *,
    realtime: bool,
    drain_timeout: float = 120.0,
    delay_s: float = 0.0,
) -> Coroutine[Any, Any, StreamResult]:
    def on_message(msg: dict[str, Any], arrival: float) -> None:
        if msg.get("type") in ("final", "error"):
            logger.info("%s", json.dumps(msg, ensure_ascii=False))

    options = {"endpointing_ms": args.endpointing_ms, "language": "en", "interim_results": True}

    async def run() -> StreamResult:
        await asyncio.sleep(delay_s)
        return await stream_audio(
            target.url,
            target.api_key,
            audio,
            chunk_ms=args.chunk_ms,
            realtime=realtime,
            start_options=options,
            on_message=on_message,
            drain_timeout=drain_timeout,
        )

    return run()


def _stream(args: argparse.Namespace, target: Target, audio: WavAudio, *, realtime: bool) -> StreamResult:
    return asyncio.run(_session(args, target, audio, realtime=realtime))


def _warm_up(args: argparse.Namespace, target: Target, entry: ManifestEntry) -> str | None:
    """One warm-up session per inference worker (or one for the embedded server), in parallel.

    Each later session starts a second after the one before, so the gateway already counts the
    earlier ones when it picks a worker: every worker gets one, whichever the measured run lands on.
    """
    audio = read_wav(entry.audio_path)
    count = max(1, len(target.worker_pids or {}))

    async def run_all() -> list[StreamResult]:
        sessions = [_session(args, target, audio, realtime=True, drain_timeout=30, delay_s=i) for i in range(count)]
        return await asyncio.gather(*sessions)

    problems = [problem for r in asyncio.run(run_all()) if (problem := r.problem())]
    return "; ".join(problems) or None


def _measure(
    args: argparse.Namespace,
    target: Target,
    session: ConcatenatedSession,
    warmup: ManifestEntry,
    probe: HopProbe | None = None,
) -> tuple[StreamResult, dict[str, Any]]:
    """Warm up first (a first session's costs are not steady state), then the measured run."""
    server: dict[str, Any] = {"pid": target.pid, "warmup_problem": None}
    if not args.no_warmup:
        server["warmup_problem"] = _warm_up(args, target, warmup)
        if server["warmup_problem"]:
            print(f"warning: warm-up session: {server['warmup_problem']}", file=sys.stderr)
    audio = WavAudio.from_float(session.audio, session.sample_rate)
    pace = "as fast as possible" if args.fast else "in real time"
    print(f"streaming {audio.duration_s:.1f} s of audio {pace} ...", file=sys.stderr)
    workers = target.worker_pids or {}
    cpu_before = cpu_seconds(target.pid) if target.pid else 0.0
    workers_before = {name: cpu_seconds(pid) for name, pid in workers.items()}
    if probe is not None:
        probe.start()
    try:
        result = _stream(args, target, audio, realtime=not args.fast)
    finally:
        if probe is not None:
            server["hop_under_load"] = probe.stop()
    if target.pid:
        cpu = cpu_seconds(target.pid) - cpu_before
        memory = memory_bytes(target.pid)
        server.update(
            cpu_s=round(cpu, 2),
            cpu_s_per_audio_s=round(cpu / audio.duration_s, 4),
            peak_rss_bytes=memory["peak_rss"],
            rss_bytes=memory["rss"],
        )
        if workers:  # the platform's CPU is the gateway's plus the workers'
            worker_cpu = {name: round(cpu_seconds(pid) - workers_before[name], 2) for name, pid in workers.items()}
            total = cpu + sum(worker_cpu.values())
            server.update(
                gateway_cpu_s=round(cpu, 2),
                workers_cpu_s=worker_cpu,
                cpu_s=round(total, 2),
                cpu_s_per_audio_s=round(total / audio.duration_s, 4),
                workers_peak_rss_bytes={name: memory_bytes(pid)["peak_rss"] for name, pid in workers.items()},
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


def _measure_celery(
    args: argparse.Namespace, session: ConcatenatedSession, warmup: ManifestEntry
) -> tuple[StreamResult, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Celery dispatch: workers + gateway, the same stream, then the ping hop; always torn down."""
    with tempfile.TemporaryDirectory(prefix="asr-bench-celery-") as tmp:
        stack = stack_from_args(Path(tmp), args)
        try:
            with stack:
                setup_django(stack.env)  # this process pings the workers as a gateway would
                queues = [w.queue for w in stack.live_workers()]
                probe = HopProbe(args.redis_url, queues, interval_s=args.probe_interval_ms / 1000)
                target = Target(stack.url, stack.api_key, stack.pid, stack.worker_pids)
                result, stats = _measure(args, target, session, warmup, probe if args.probe_interval_ms else None)
                live = stack.live_workers()
                info = {
                    "prefix": stack.prefix,
                    "database": args.database,
                    "redis_url": args.redis_url,
                    "workers": [{"id": w.id, "queue": w.queue, "model": w.model, "device": w.device} for w in live],
                    "sessions_pinned_to": stack.pinned(),  # warm-ups, then the measured session
                }
                if not live:
                    raise ServerError("no live worker left to ping")
                print(
                    f"hop: {args.hop_count} asr.ping round trips to {live[0].id}, "
                    f"every {args.hop_interval_ms:g} ms ...",
                    file=sys.stderr,
                )
                hop = measure_hop(
                    args.redis_url, live[0].queue, count=args.hop_count, interval_s=args.hop_interval_ms / 1000
                )
        except (StreamError, ServerError):
            print(f"gateway log (last lines):\n{stack.gateway.log_tail()}", file=sys.stderr)
            for name in stack.worker_names:
                print(f"{name} log (last lines):\n{stack.log_tail(name)}", file=sys.stderr)
            raise
        finally:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            for path in stack.log_paths():
                if path.exists():
                    shutil.copyfile(path, args.output.parent / path.name)
        if result.problem():
            print(f"gateway log (last lines):\n{stack.gateway.log_tail()}", file=sys.stderr)
        return result, stats, hop, info


def _timeline(result: StreamResult) -> list[dict[str, Any]]:
    """Every server message with its arrival in seconds after streaming began, for debugging."""
    origin = result.started_at or (result.messages[0].arrival if result.messages else 0.0)
    return [{"t": round(m.arrival - origin, 3), **m.data} for m in result.messages]


SUBCOMMANDS = {
    "load": "bench.load",
    "memory": "bench.memory",
    "abuse": "bench.abuse",
    "chaos": "bench.chaos",
    "accuracy": "bench.accuracy",
    "noise": "bench.noise",
    "nonspeech": "bench.nonspeech",
    "codecs": "bench.codecs",
    "results": "bench.results_table",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:  # `python -m bench load ...`; every other flag is as before
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    args = build_parser().parse_args(argv)
    args.output = args.output or DEFAULT_OUTPUT[args.dispatch]
    # SIGTERM unwinds like Ctrl-C, so every process this run started is ended (try/finally).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s %(message)s", level=level)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    if args.url and not args.api_key:
        print("error: --url needs --api-key (or ASR_API_KEY)", file=sys.stderr)
        return 2
    if args.url and args.dispatch != "local":
        print("error: --dispatch celery starts its own servers; it does not take --url", file=sys.stderr)
        return 2
    entries = load_manifest(args.eval_dir)
    session = concatenate_clips(entries, gap_s=args.gap_s)
    try:
        if args.url:
            target = Target(args.url, args.api_key, args.server_pid)
            result, server = _measure(args, target, session, entries[0])
        else:
            result, server = _measure_embedded(args, session, entries[0])
        if args.dispatch == "celery":
            celery_result, celery_server, hop, stack = _measure_celery(args, session, entries[0])
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
            "dispatch": args.dispatch,
        },
        "audio_s": round(session.duration_s, 2),
        "problem": result.problem(),
        "stream": analyse(result, session),
        "server": server,
        "messages": _timeline(result),
    }
    if args.dispatch == "celery":
        celery_stream = analyse(celery_result, session)
        figures["celery"] = {
            "problem": celery_result.problem(),
            "stream": celery_stream,
            "server": celery_server,
            "stack": stack,
            "messages": _timeline(celery_result),
        }
        figures["hop"] = hop
        under_load = celery_server.pop("hop_under_load", None)
        if under_load:
            pinned = stack["sessions_pinned_to"]
            figures["hop_under_load"] = {
                "interval_ms": args.probe_interval_ms,
                "session_worker": pinned[-1] if pinned else None,
                "workers": {q.rsplit(".worker.", 1)[-1]: r for q, r in under_load.items()},
            }
        figures["comparison"] = compare(figures["stream"], celery_stream, hop)
    if not args.no_offline:
        print("offline baseline ...", file=sys.stderr)
        figures["offline"] = transcribe_clips_isolated(entries)
    print(render(figures))
    if args.dispatch == "celery":
        print()
        print(render_comparison(figures))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}", file=sys.stderr)
    problems = [figures["problem"], figures.get("celery", {}).get("problem")]
    if figures.get("hop", {}).get("lost"):
        problems.append(f"{figures['hop']['lost']} pings lost")
    for worker, probe in figures.get("hop_under_load", {}).get("workers", {}).items():
        if probe["lost"]:
            problems.append(f"{probe['lost']} pings to {worker} lost during the stream")
    return 1 if any(problems) else 0


if __name__ == "__main__":
    sys.exit(main())
