"""`python -m bench codecs`: what decoding the wire encodings costs, beside what recognizing costs.

On the eval session (every real/ clip, 1.5 s apart), in this process:
- CPU seconds per audio second of the gateway's decoders (transcription/codecs/), fed 100 ms
  pieces as a client sends them: Opus in WebM and in Ogg (32 kbps, mono, as MediaRecorder makes
  it) decoded to 48 kHz and to 16 kHz, and G.711 μ-law;
- what the engine then spends resampling 48 kHz PCM to its 16 kHz (an Opus session at 48 kHz);
- the recognizer's CPU per audio second on the same audio (StreamingSession with the server's
  default model, partials every 0.5 s of audio, as a live stream has them); target: Opus under 5 %
  of it;
- bytes per minute on the wire: PCM s16le 16 kHz, μ-law 8 kHz, Opus at 16, 24 and 32 kbps in both
  containers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import soxr

DEFAULT_EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "real"
PIECE_S = 0.1


def _decode_cpu_s(data: bytes, start: dict[str, Any], duration_s: float, repeats: int) -> float:
    """Least CPU seconds over ``repeats`` runs to decode ``data`` fed in 100 ms pieces."""
    from transcription.codecs import open_decoder
    from transcription.engine import SessionLimits, parse_start

    config = parse_start(start, SessionLimits())
    size = max(1, round(len(data) * PIECE_S / duration_s))
    best = float("inf")
    for _ in range(repeats):
        decoder = open_decoder(config)
        assert decoder is not None
        started = time.process_time()
        for i in range(0, len(data), size):
            decoder.decode(data[i : i + size])
        decoder.flush()
        best = min(best, time.process_time() - started)
    return best


def _engine_resampling_cpu_s(audio: np.ndarray, rate: int, repeats: int) -> float:
    """What the engine spends turning ``rate`` PCM (an Opus session's output) into its 16 kHz."""
    from tests.support.audio import to_s16
    from transcription.engine.audio import Resampler, decode_pcm

    pcm = to_s16(soxr.resample(audio, 16000, rate, "HQ"))
    step = int(rate * PIECE_S) * 2
    best = float("inf")
    for _ in range(repeats):
        resampler = Resampler(rate)
        started = time.process_time()
        for i in range(0, len(pcm), step):
            resampler.process(decode_pcm(pcm[i : i + step], encoding="pcm_s16le", channels=1))
        best = min(best, time.process_time() - started)
    return best


def _recognizer_cpu_s(audio: np.ndarray) -> float:
    from tests.support.audio import to_s16
    from transcription.engine import SessionLimits, StreamingSession, parse_start
    from transcription.engine.models import ModelSettings, load_models

    models = load_models(ModelSettings())
    engine = StreamingSession(parse_start({"sample_rate": 16000}, SessionLimits()), models)
    step = int(16000 * PIECE_S)
    started = time.process_time()
    for i in range(0, len(audio), step):
        engine.accept_audio(to_s16(audio[i : i + step]))
        now = (i + step) / 16000  # the stream's clock: real time, as a live client sends
        if engine.partial_due(now):
            engine.decode_partial(now)
    engine.finalize("stop")
    return time.process_time() - started


def measure(eval_dir: Path, repeats: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asrplatform.settings.test")
    import django

    django.setup()
    from bench.evaluation import concatenate_clips
    from tests.support.codecs import encode_g711, encode_opus, webm_as_recorded

    session = concatenate_clips(eval_dir, gap_s=1.5, tail_s=2.0)
    audio, seconds = session.audio, session.duration_s
    streams = {
        "opus/webm": webm_as_recorded(encode_opus(audio, "webm")),
        "opus/ogg": encode_opus(audio, "ogg"),
        "mulaw": encode_g711(audio, "mulaw"),
    }
    decoding = []
    for name, start in (
        ("opus/webm", {"encoding": "opus", "sample_rate": 48000}),
        ("opus/webm", {"encoding": "opus", "sample_rate": 16000}),
        ("opus/ogg", {"encoding": "opus", "sample_rate": 48000}),
        ("opus/ogg", {"encoding": "opus", "sample_rate": 16000}),
        ("mulaw", {"encoding": "mulaw"}),
    ):
        cpu = _decode_cpu_s(streams[name], start, seconds, repeats)
        rate = start.get("sample_rate", 8000)
        decoding.append({"stream": name, "output_hz": rate, "cpu_s_per_audio_s": cpu / seconds})
    resampling = _engine_resampling_cpu_s(audio, 48000, repeats)
    decoding.append(
        {"stream": "pcm 48 kHz in the engine", "output_hz": 16000, "cpu_s_per_audio_s": resampling / seconds}
    )
    recognizer = _recognizer_cpu_s(audio) / seconds
    wire = {"pcm_s16le 16 kHz": 16000 * 2 * 60, "mulaw 8 kHz": 8000 * 60}
    for kbps in (16, 24, 32):
        for container in ("webm", "ogg"):
            data = encode_opus(audio, container, bitrate=kbps * 1000)
            data = webm_as_recorded(data) if container == "webm" else data
            wire[f"opus/{container} {kbps} kbps"] = round(len(data) * 60 / seconds)
    return {"audio_s": round(seconds, 1), "decoding": decoding, "recognizer_cpu_s_per_audio_s": recognizer,
            "wire_bytes_per_minute": wire}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    recognizer = result["recognizer_cpu_s_per_audio_s"]
    lines = [
        f"Audio: {result['audio_s']} s (eval real/). Recognizer: {recognizer * 1000:.1f} ms CPU per audio second.",
        "",
        "| stream | decoded to | CPU ms per audio s | share of the recognizer |",
        "|---|---|---|---|",
    ]
    for row in result["decoding"]:
        cost = row["cpu_s_per_audio_s"]
        lines.append(f"| {row['stream']} | {row['output_hz']} Hz | {cost * 1000:.2f} | {cost / recognizer:.1%} |")
    lines += ["", "| on the wire | bytes per minute | vs PCM |", "|---|---|---|"]
    pcm = result["wire_bytes_per_minute"]["pcm_s16le 16 kHz"]
    for name, size in result["wire_bytes_per_minute"].items():
        lines.append(f"| {name} | {size:,} | {size / pcm:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench codecs", description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--repeats", type=int, default=3, help="decoding runs per stream; the least CPU is kept")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = measure(args.eval_dir, args.repeats)
    print(render(result))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))
    return 0
