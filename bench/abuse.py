"""`python -m bench abuse`: what a careless or hostile client costs the server and everyone else.

One victim streams real speech in real time (another tenant's key), four times: alone, beside an
unpaced client, beside a keepalive flooder, and alone again (the second "alone" shows the noise).

- unpaced: a client sends --unpaced-minutes of speech (the eval clips, repeated) as fast as the
  server takes it, then `stop`, and waits for its finals. Reported: how long sending took (the
  server's backpressure sets it), its finals and how it ended, and the server's RSS growth.
- flood: a client sends --flood-messages keepalives as fast as it can. Reported: how many the
  server took before cutting it off, and with which error.

The victim's final latency (p50 / p95 / max) in each phase is the figure: an abuser should move
its p95 by little more than the noise between the two "alone" runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asrclient import StreamError, WavAudio, WavError
from bench.evaluation import concatenate_clips, load_manifest

from .load import MIB, settle, warm_up
from .metrics import analyse
from .server import ServerError, memory_bytes
from .targets import Target, add_target_arguments, open_target, start_run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench abuse", description=__doc__)
    add_target_arguments(p)
    p.add_argument("--unpaced-minutes", type=float, default=30.0, help="audio the unpaced client sends (default 30)")
    p.add_argument("--flood-messages", type=int, default=100_000, help="keepalives the flooder sends (default 100000)")
    p.add_argument("--gap-s", type=float, default=1.0, help="silence between the victim's clips (default 1)")
    p.add_argument("--drain-timeout-s", type=float, default=1800.0, help="the unpaced client's wait for its finals")
    p.add_argument("--output", type=Path, help="JSON results (default bench/results/abuse.json)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return p


class RssWatch:
    """Samples the measured processes' RSS every 0.2 s in a thread; `peak_growth_mib` over the start."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = self._total()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _total(self) -> int:
        total = 0
        for pid in self.pids.values():
            try:
                total += memory_bytes(pid)["rss"]
            except OSError:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._total())

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        end = self._total()
        return {
            "peak_growth_mib": round((self.peak - self.start) / MIB, 1),
            "end_growth_mib": round((end - self.start) / MIB, 1),
        }


async def unpaced_client(url: str, key: str, pcm: bytes, sample_rate: int, drain_timeout_s: float) -> dict[str, Any]:
    """Send all of ``pcm`` as fast as the server takes it, then stop, and collect what comes back."""
    frame = sample_rate // 10 * 2  # 100 ms of s16 mono
    out: dict[str, Any] = {"audio_s": round(len(pcm) / 2 / sample_rate, 1), "finals": 0, "error": None, "closed": False}
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {key}"}
    async with connect(url, additional_headers=headers, max_size=2**22, ping_timeout=None) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": sample_rate, "interim_results": False}))

        async def read() -> None:
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "final":
                        out["finals"] += 1
                    elif message["type"] == "error":
                        out["error"] = message["code"]
                    elif message["type"] == "closed":
                        out["closed"] = True
            except ConnectionClosed:
                pass

        reader = asyncio.create_task(read())
        try:
            for i in range(0, len(pcm), frame):
                await ws.send(pcm[i : i + frame])
            out["send_s"] = round(time.monotonic() - started, 1)
            await ws.send(json.dumps({"type": "stop"}))
        except ConnectionClosed:
            out["send_s"] = round(time.monotonic() - started, 1)
        await asyncio.wait_for(reader, timeout=drain_timeout_s)
    out["total_s"] = round(time.monotonic() - started, 1)
    return out


async def flooder(url: str, key: str, messages: int) -> dict[str, Any]:
    """Keepalives as fast as the socket takes them; how many went out before the server cut it off."""
    out: dict[str, Any] = {"sent": 0, "error": None}
    started = time.monotonic()
    async with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        await ws.send(json.dumps({"type": "start", "interim_results": False}))
        keepalive = json.dumps({"type": "keepalive"})
        try:
            for _ in range(messages):
                await ws.send(keepalive)
                out["sent"] += 1
            await ws.send(json.dumps({"type": "stop"}))
        except ConnectionClosed:
            pass
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "error":
                    out["error"] = message["code"]
        except ConnectionClosed:
            pass
    out["wall_s"] = round(time.monotonic() - started, 2)
    return out


def victim_figures(target: Target, victim: WavAudio, session: Any, abuser: Any = None) -> dict[str, Any]:
    async def both() -> tuple[Any, Any]:
        options = {"start_options": {"interim_results": True, "language": "en"}, "drain_timeout": 120.0}
        victim_run = target.stream(victim, chunk_ms=100, realtime=True, **options)
        if abuser is None:
            return await victim_run, None
        # The abuser first, a second ahead, so the victim streams into a server already under it.
        abuse = asyncio.create_task(abuser())
        await asyncio.sleep(1.0)
        result = await victim_run
        return result, await abuse

    watch = RssWatch(target.pids)
    stream, abuse = asyncio.run(both())
    memory = watch.stop()
    figures = analyse(stream, session)
    return {
        "victim": {
            "final_latency_ms": figures["final_latency_ms"],
            "wer": figures.get("wer_streamed"),
            "problem": stream.problem(),
        },
        "abuser": abuse,
        "server_memory": memory,
    }


def measure(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    if target.new_key is None:
        raise ServerError("the abuse benchmark needs a server it started (it mints keys of two tenants)")
    entries = load_manifest(args.eval_dir)
    session = concatenate_clips(entries, gap_s=args.gap_s)
    victim = WavAudio.from_float(session.audio, session.sample_rate)
    abuser_key = target.new_key("bench-abuser")
    warm_up(target, entries, {"chunk_ms": 100, "start_options": {"language": "en"}, "drain_timeout": 60.0})
    settle(target, timeout_s=60)
    speech = victim.samples.astype("<i2").tobytes()
    repeats = max(1, int(np.ceil(args.unpaced_minutes * 60 * session.sample_rate * 2 / len(speech))))
    unpaced_pcm = (speech * repeats)[: int(args.unpaced_minutes * 60 * session.sample_rate) * 2]
    phases: dict[str, Any] = {}
    plan = [
        ("alone", None),
        (
            "unpaced",
            lambda: unpaced_client(target.url, abuser_key, unpaced_pcm, victim.sample_rate, args.drain_timeout_s),
        ),
        ("flood", lambda: flooder(target.url, abuser_key, args.flood_messages)),
        ("alone again", None),
    ]
    for name, abuser in plan:
        print(f"{name} ...", file=sys.stderr)
        phases[name] = victim_figures(target, victim, session, abuser)
        settle(target, timeout_s=120)
    return {"phases": phases, "victim_audio_s": round(len(speech) / 2 / session.sample_rate, 1)}


def render(figures: dict[str, Any]) -> str:
    lines = [
        f"abuse - {figures['target']}: "
        f"one victim stream in real time ({figures['victim_audio_s']} s of speech) per phase",
        "",
        "phase          victim final p50    p95    max   WER   server RSS peak/end MiB   abuser",
    ]
    for name, phase in figures["phases"].items():
        lat, victim = phase["victim"]["final_latency_ms"], phase["victim"]
        abuser = phase["abuser"]
        if abuser is None:
            what = "-"
        elif "audio_s" in abuser:
            what = (
                f"{abuser['audio_s'] / 60:.0f} min sent in {abuser.get('send_s', '?')} s, {abuser['finals']} finals, "
                f"{'closed' if abuser['closed'] else 'error ' + str(abuser['error'])} after {abuser['total_s']} s"
            )
        else:
            ending = abuser["error"] or "the connection closed"
            what = f"{abuser['sent']} keepalives written before {ending} ({abuser['wall_s']} s)"
        wer = f"{victim['wer'] * 100:4.1f}%" if victim["wer"] is not None else "   - "
        mem = phase["server_memory"]
        lines.append(
            f"{name:<14} {lat['p50']:>17} {lat['p95']:>6} {lat['max']:>6} {wer}   "
            f"{mem['peak_growth_mib']:>+8.1f} / {mem['end_growth_mib']:>+6.1f}        {what}"
        )
        if victim["problem"]:
            lines.append(f"  victim problem: {victim['problem']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (code := start_run(args, "abuse")) is not None:
        return code
    if args.peer:
        print("error: --peer is for `python -m bench load`", file=sys.stderr)
        return 2
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        with open_target(args, args.output.parent) as target:
            outcome = measure(target, args)
    except (StreamError, ServerError, WavError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figures = {"created": started, "target": target.name, "unpaced_minutes": args.unpaced_minutes, **outcome}
    print(render(figures))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}", file=sys.stderr)
    return 0
