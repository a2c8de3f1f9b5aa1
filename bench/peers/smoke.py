"""A peer end to end: start it, stream one eval clip in real time through its adapter, score it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from asrclient import StreamResult, WavAudio
from bench.evaluation import concatenate_clips, load_manifest, word_error_rate
from bench.metrics import analyse
from bench.server import ROOT, cpu_seconds, memory_bytes

from .process import PeerProcess

JFK = ROOT.parent / "shared" / "eval" / "real" / "jfk.wav"
# stream(url, audio, *, chunk_ms, realtime) -> StreamResult: a peer's adapter.
PeerStream = Callable[..., Coroutine[Any, Any, StreamResult]]


def smoke_peer(
    wav: Path, server: PeerProcess, stream: PeerStream, *, system: str, chunk_ms: int = 100, tail_s: float = 1.0
) -> dict[str, Any]:
    """One clip (from its folder's manifest) plus `tail_s` of silence, through `bench.metrics.analyse`."""
    entries = [e for e in load_manifest(wav.parent) if e.audio_path.name == wav.name]
    if not entries:
        raise ValueError(f"{wav.name} is not in {wav.parent / 'manifest.jsonl'}")
    session = concatenate_clips(entries, gap_s=tail_s)
    audio = WavAudio.from_float(session.audio, session.sample_rate)
    with server as peer:
        cpu_before = cpu_seconds(peer.pid)
        result = asyncio.run(stream(peer.url, audio, chunk_ms=chunk_ms, realtime=True))
        cpu_s = cpu_seconds(peer.pid) - cpu_before
        memory = memory_bytes(peer.pid)
    report = analyse(result, session)
    t0 = result.started_at or 0.0
    finals: list[dict[str, Any]] = [{**m.data, "arrival_s": round(m.arrival - t0, 3)} for m in result.of_type("final")]
    return {
        "system": system,
        "clip": wav.name,
        "reference": entries[0].text,
        "audio_s": round(session.duration_s, 2),
        "problem": result.problem(),
        "finals": finals,
        "partials": len(result.of_type("partial")),
        "wer": word_error_rate([entries[0].text], [" ".join(f["text"] for f in finals)]),
        "final_latency_ms": report["final_latency_ms"],
        "first_partial_ms": report["first_partial_ms"],
        "server_cpu_s": round(cpu_s, 2),
        "server_peak_rss_mib": round(memory["peak_rss"] / 2**20, 1),
    }


def print_smoke(outcome: dict[str, Any]) -> None:
    print(f"{outcome['clip']}: {outcome['audio_s']} s of audio streamed in real time through {outcome['system']}")
    for final in outcome["finals"]:
        span = f"{final['start']:.2f}-{final['end']:.2f} s"
        print(f"  final {final['segment']} [{span}, {final['reason']}] at {final['arrival_s']:.2f} s: {final['text']}")
    print(f"  reference: {outcome['reference']}")
    print(f"  WER {outcome['wer']:.3f}   partials {outcome['partials']}   problem: {outcome['problem']}")
    print(f"  final latency after the clip's last frame (ms): {outcome['final_latency_ms']}")
    print(f"  first partial after the clip's first frame (ms): {outcome['first_partial_ms']}")
    print(f"  server CPU {outcome['server_cpu_s']} s, peak RSS {outcome['server_peak_rss_mib']} MiB")
