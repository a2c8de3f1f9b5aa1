"""`python -m bench load`: how many concurrent real-time streams one server serves within the SLO.

For each N in --levels, N clients stream long sessions of the eval clips at once (one asyncio loop,
real-time pacing, start times staggered over --ramp-s, each client its own seeded clip order), then
the server settles before the next N. Per N: final latency, partial gaps during speech, first
partial, WER, server CPU and RSS, errors. The sweep stops at the first N that breaks the SLO;
capacity is the largest N that met it. One server serves the whole sweep, after a warm-up.
``--protocol deepgram``: the clients speak Deepgram's live API instead of v1 (bench/deepgram_stream.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from asrclient import StreamError, WavAudio, WavError, read_wav
from bench.evaluation import ConcatenatedSession, ManifestEntry, concatenate_clips, load_manifest

from . import multichannel, results_log
from .loadreport import render, render_row, render_side_by_side
from .loadstats import ClientOutcome, Slo, capacity, level_figures, slo_failures
from .offline import transcribe_clips_isolated
from .server import ServerError, cpu_seconds, memory_bytes
from .targets import CLIENTS, Target, add_target_arguments, open_target, peer_target, start_run

logger = logging.getLogger(__name__)

DEFAULT_LEVELS = (1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32)
MIB = 2**20


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("levels are positive integers, e.g. 1,2,4")
    return levels


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench load", description=__doc__)
    add_target_arguments(p)
    p.add_argument(
        "--protocol",
        choices=sorted(CLIENTS),
        default="v1",
        help="the clients speak v1 (default) or Deepgram's live API (/v1/listen): same audio, pacing, figures",
    )
    p.add_argument("--levels", type=_levels, default=list(DEFAULT_LEVELS), help="concurrent clients per level")
    p.add_argument("--session-s", type=float, default=60.0, help="audio per client session (default 60)")
    p.add_argument("--gap-s", type=float, default=1.0, help="silence between clips (default 1)")
    p.add_argument("--speed-probe-s", type=float, default=20.0, help="the machine-speed stream's audio (default 20)")
    p.add_argument("--ramp-s", type=float, default=3.0, help="client starts spread over this (default 3)")
    p.add_argument("--seed", type=int, default=1, help="clip order of each client (default 1)")
    p.add_argument(
        "--no-offline", action="store_true", help="skip the offline WER baseline (same model, each clip alone)"
    )
    p.add_argument("--settle-timeout-s", type=float, default=60.0, help="wait for an idle server (default 60)")
    p.add_argument("--drain-timeout-s", type=float, default=120.0, help="per client, after its last frame")
    p.add_argument("--keep-going", action="store_true", help="run every level, even after the SLO broke")
    p.add_argument(
        "--multichannel",
        action="store_true",
        help="each client streams a stereo call, both channels speaking, each transcribed on its own "
        "(bench/multichannel.py): figures, SLO and capacity count channels (v1 only)",
    )
    s = p.add_argument_group("SLO")
    s.add_argument("--slo-final-p95-ms", type=float, default=1300.0, help="default 1300")
    s.add_argument("--slo-partial-gap-ms", type=float, default=1500.0, help="max gap in speech, default 1500")
    s.add_argument("--slo-max-errors", type=int, default=0, help="default 0")
    s.add_argument("--slo-max-wer", type=float, help="e.g. 0.15 (default: not part of the SLO)")
    p.add_argument("--output", type=Path, help="JSON results (default bench/results/load.json)")
    p.add_argument(
        "--results",
        type=Path,
        default=results_log.DEFAULT_RESULTS,
        help="append this run's summary to this JSON list (default docs/benchmarks/results.json)",
    )
    p.add_argument("--no-results", action="store_true", help="append nothing (a trial run)")
    p.add_argument("--plot", type=Path, help="PNG plot (default: the --output path with .png)")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return p


# --- sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientPlan:
    client: int
    offset_s: float
    session: ConcatenatedSession
    audio: WavAudio
    channel_sessions: tuple[ConcatenatedSession, ...] = ()  # --multichannel: the session of each channel


def clip_order(
    entries: list[ManifestEntry], durations: dict[str, float], *, target_s: float, gap_s: float, rng: random.Random
) -> list[ManifestEntry]:
    """Shuffled clips, reshuffled each round, until the session reaches `target_s` (gaps included)."""
    order: list[ManifestEntry] = []
    total = 0.0
    while total < target_s:
        round_ = list(entries)
        rng.shuffle(round_)
        for entry in round_:
            total += durations[entry.name] + (gap_s if order else 0.0)
            order.append(entry)
            if total >= target_s:
                break
    return order


def client_plans(
    entries: list[ManifestEntry], n: int, *, session_s: float, gap_s: float, ramp_s: float, seed: int
) -> list[ClientPlan]:
    """N sessions, client i starting at i/N of the ramp; client i's clip order is the same at every N."""
    durations = {e.name: read_wav(e.audio_path).duration_s for e in entries}
    plans = []
    for client in range(n):
        rng = random.Random(f"{seed}:{client}")
        order = clip_order(entries, durations, target_s=session_s, gap_s=gap_s, rng=rng)
        session = concatenate_clips(order, gap_s=gap_s)
        audio = WavAudio.from_float(session.audio, session.sample_rate)
        plans.append(ClientPlan(client, round(ramp_s * client / n, 3), session, audio))
    return plans


# --- one level -----------------------------------------------------------------------------------


def _rss(pid: int) -> int | None:
    try:
        return memory_bytes(pid)["rss"]
    except OSError:
        return None


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {role: cpu_seconds(pid) for role, pid in pids.items()}


async def _sample_rss(pids: dict[str, int], peaks: dict[str, int], stop: asyncio.Event) -> None:
    """Each measured process's peak RSS during the level, sampled once a second."""
    while True:
        for role, pid in pids.items():
            if (rss := _rss(pid)) is not None:
                peaks[role] = max(peaks.get(role, 0), rss)
        if stop.is_set():
            return
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def _client(target: Target, plan: ClientPlan, stream_options: dict[str, Any]) -> ClientOutcome:
    await asyncio.sleep(plan.offset_s)
    try:
        result = await target.stream(plan.audio, realtime=True, **stream_options)
    except StreamError as exc:
        return ClientOutcome(plan.client, plan.offset_s, plan.session, None, str(exc))
    except Exception as exc:  # one client's crash is an error of the level, not the end of the sweep
        logger.exception("client %d failed", plan.client)
        return ClientOutcome(plan.client, plan.offset_s, plan.session, None, f"{type(exc).__name__}: {exc}")
    return ClientOutcome(plan.client, plan.offset_s, plan.session, result)


async def _clients(
    target: Target, plans: list[ClientPlan], stream_options: dict[str, Any], peaks: dict[str, int]
) -> list[ClientOutcome]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(target.pids, peaks, stop))
    try:
        outcomes = await asyncio.gather(*(_client(target, plan, stream_options) for plan in plans))
        return [o for plan, outcome in zip(plans, outcomes, strict=True) for o in _per_channel(plan, outcome)]
    finally:
        stop.set()
        await sampler


def _per_channel(plan: ClientPlan, outcome: ClientOutcome) -> list[ClientOutcome]:
    return multichannel.per_channel(plan.channel_sessions, outcome)


def _stereo(plans: list[ClientPlan], others: list[ClientPlan], chunk_ms: int) -> list[ClientPlan]:
    """--multichannel: ``plans``' sessions on channel 0, ``others``' on channel 1."""
    return [
        replace(one, audio=multichannel.stereo_audio(one.audio, two.audio, chunk_ms=chunk_ms),
                channel_sessions=(one.session, two.session))
        for one, two in zip(plans, others, strict=True)
    ]  # fmt: skip


def run_level(
    target: Target, plans: list[ClientPlan], stream_options: dict[str, Any], offline: dict[str, str] | None = None
) -> dict[str, Any]:
    """Stream every plan at once; the figures of the level, with the server's CPU and memory."""
    cpu_before, own_before, started = _cpu(target.pids), time.process_time(), time.monotonic()
    peaks: dict[str, int] = {}
    outcomes = asyncio.run(_clients(target, plans, stream_options, peaks))
    wall = time.monotonic() - started
    own = time.process_time() - own_before
    cpu = {role: round(used - cpu_before[role], 2) for role, used in _cpu(target.pids).items()}
    figures = level_figures(outcomes, offline)
    cores = os.cpu_count() or 1
    total = sum(cpu.values())
    figures["wall_s"] = round(wall, 1)
    figures["server"] = {
        "cpu_s": cpu,
        "cpu_pct": round(100 * total / wall, 1) if cpu else None,  # of one core, like top
        "cpu_pct_of_machine": round(100 * total / wall / cores, 1) if cpu else None,
        "cpu_s_per_audio_s": round(total / figures["audio_s"], 4) if cpu and figures["audio_s"] else None,
        "rss_mib": {role: round(rss / MIB, 1) for role, pid in target.pids.items() if (rss := _rss(pid))},
        "peak_rss_mib": {role: round(rss / MIB, 1) for role, rss in peaks.items()},
    }
    figures["bench_client"] = {"cpu_s": round(own, 2), "cpu_pct": round(100 * own / wall, 1)}
    figures["sessions"] = [
        {
            "client": o.client,
            "offset_s": o.offset_s,
            "audio_s": round(o.session.duration_s, 1),
            "clips": [c.name for c in o.session.clips],
            "problem": o.problem,
        }
        for o in outcomes
    ]
    return figures


def settle(target: Target, *, timeout_s: float, quiet_pct: float = 5.0, window_s: float = 1.0) -> dict[str, Any]:
    """Wait until the server's processes are idle: every session of the level ended and stored."""
    started = time.monotonic()
    if not target.pids:
        time.sleep(min(timeout_s, 3.0))
        return {"settle_s": round(time.monotonic() - started, 1), "quiet": None}
    while True:
        before = sum(_cpu(target.pids).values())
        time.sleep(window_s)
        used_pct = 100 * (sum(_cpu(target.pids).values()) - before) / window_s
        elapsed = time.monotonic() - started
        if used_pct < quiet_pct or elapsed >= timeout_s:
            return {"settle_s": round(elapsed, 1), "quiet": used_pct < quiet_pct}


def warm_up(target: Target, entries: list[ManifestEntry], stream_options: dict[str, Any]) -> str | None:
    """One unmeasured session per inference worker (a second apart, so each worker gets one)."""
    plans = client_plans(entries[:4], target.warmup_sessions, session_s=5.0, gap_s=1.0, ramp_s=0.0, seed=0)
    plans = [ClientPlan(p.client, float(p.client), p.session, p.audio) for p in plans]
    outcomes = asyncio.run(_clients(target, plans, stream_options, {}))
    return "; ".join(o.problem for o in outcomes if o.problem) or None


# --- the sweep -----------------------------------------------------------------------------------


def sweep(
    target: Target,
    entries: list[ManifestEntry],
    args: argparse.Namespace,
    slo: Slo,
    *,
    probe_speed: bool = False,
) -> dict[str, Any]:
    """Warm up, then one level per N until the SLO breaks (or every level with --keep-going)."""
    stream_options = {
        "chunk_ms": args.chunk_ms,
        "start_options": {"endpointing_ms": args.endpointing_ms, "language": "en", "interim_results": True},
        "drain_timeout": args.drain_timeout_s,
    }
    offline = None
    if not args.no_offline:  # once, before any server load: the same model on each clip alone
        print("offline baseline: decoding each clip alone ...", file=sys.stderr)
        offline = dict(zip((e.name for e in entries), transcribe_clips_isolated(entries)["hypotheses"], strict=True))
    warmup = warm_up(target, entries, stream_options)
    if warmup:
        print(f"warning: warm-up session: {warmup}", file=sys.stderr)
    probe_s = getattr(args, "speed_probe_s", 20.0)
    speed = machine_speed(target, entries, stream_options, probe_s) if probe_speed and target.pids else None
    levels: list[dict[str, Any]] = []
    level_options = dict(stream_options)
    stereo = getattr(args, "multichannel", False)  # a Namespace made by hand (tests) may not have it
    if stereo:  # the levels only: warm-up and machine speed stream mono as always
        level_options["start_options"] = {**stream_options["start_options"], **multichannel.START_OPTIONS}
    for n in args.levels:
        plans = client_plans(entries, n, session_s=args.session_s, gap_s=args.gap_s, ramp_s=args.ramp_s, seed=args.seed)
        if stereo:
            seed = args.seed + 1  # another clip order on channel 1
            others = client_plans(entries, n, session_s=args.session_s, gap_s=args.gap_s, ramp_s=args.ramp_s, seed=seed)
            plans = _stereo(plans, others, args.chunk_ms)
        print(f"N={n}: {n} clients x ~{args.session_s:g} s in real time ...", file=sys.stderr)
        settled = settle(target, timeout_s=args.settle_timeout_s)
        level = {"n": n, "settle_before": settled, **run_level(target, plans, level_options, offline)}
        level["slo_failures"] = slo_failures(level, slo)
        level["slo_ok"] = not level["slo_failures"]
        levels.append(level)
        print(render_row(level), file=sys.stderr)
        if not level["slo_ok"] and not args.keep_going:
            break
    broke = next((level["n"] for level in levels if not level["slo_ok"]), None)
    if stereo:
        channels = multichannel.CHANNELS * capacity(levels)
        print(f"capacity: {capacity(levels)} stereo sessions, {channels} channels", file=sys.stderr)
    return {
        "warmup_problem": warmup,
        "machine_cpu_s_per_audio_s": speed,
        "levels": levels,
        "capacity": capacity(levels),
        "first_failing_n": broke,
    }


def machine_speed(
    target: Target, entries: list[ManifestEntry], stream_options: dict[str, Any], session_s: float = 20.0
) -> float | None:
    """`python -m bench`'s measure of the machine: server CPU seconds per audio second of one
    real-time stream (20 s of the clips), so runs on faster and slower machines can be told apart."""
    print(f"machine speed: one stream of {session_s:g} s ...", file=sys.stderr)
    plans = client_plans(entries, 1, session_s=session_s, gap_s=1.0, ramp_s=0.0, seed=0)
    speed = run_level(target, plans, stream_options)["server"]["cpu_s_per_audio_s"]
    return float(speed) if speed is not None else None


def _measured(target: Target, outcome: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": {"name": target.name, "url": target.url, "measured": sorted(target.pids), **target.info},
        **outcome,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.multichannel and (args.protocol != "v1" or args.peer):
        print("error: --multichannel streams protocol v1 only, to our server (not to a --peer)", file=sys.stderr)
        return 2
    if (code := start_run(args, "load" if args.protocol == "v1" else f"load-{args.protocol}")) is not None:
        return code
    slo = Slo(args.slo_final_p95_ms, args.slo_partial_gap_ms, args.slo_max_errors, args.slo_max_wer)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        entries = load_manifest(args.eval_dir)
        with open_target(args, args.output.parent, protocol=args.protocol) as target:
            ours = _measured(target, sweep(target, entries, args, slo, probe_speed=not args.no_results))
        peers = []
        for name in dict.fromkeys(args.peer):  # each peer once, in the order given
            with peer_target(name, args.output.parent) as target:
                peers.append(_measured(target, sweep(target, entries, args, slo)))
    except (StreamError, ServerError, WavError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figures = {
        "created": started,
        "config": {
            "levels": args.levels,
            "session_s": args.session_s,
            "gap_s": args.gap_s,
            "ramp_s": args.ramp_s,
            "seed": args.seed,
            "chunk_ms": args.chunk_ms,
            "endpointing_ms": args.endpointing_ms,
            "eval_dir": str(args.eval_dir),
            "dispatch": "external" if args.url else args.dispatch,
            "protocol": args.protocol,
            "multichannel": args.multichannel,
            "cpu_count": os.cpu_count(),
        },
        "slo": slo.as_dict(),
        **ours,
    }
    print(render(figures))
    if peers:
        figures["peers"] = peers
        for peer in peers:
            print("\n" + render({**figures, **peer}))
        print("\n" + render_side_by_side(figures, peers))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}", file=sys.stderr)
    if not args.no_results:
        _record(args.results, figures, [ours, *peers])
    if not args.no_plot:
        from .plot import plot_load

        png = args.plot or args.output.with_suffix(".png")
        plot_load(figures, png)
        print(f"written: {png}", file=sys.stderr)
    return 0


def _record(path: Path, figures: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """Each system's sweep as one entry of the results list; the machine's speed is ours (the first run's)."""
    speed, code = runs[0].get("machine_cpu_s_per_audio_s"), results_log.code_state()
    entries = [
        results_log.entry({**run, "slo": figures["slo"]}, config=figures["config"], machine_speed=speed, code=code)
        for run in runs
    ]
    results_log.append(path, entries)
    print(f"appended {len(entries)} run(s) to {path}", file=sys.stderr)
