"""Turn one streamed session into latency, endpointing and accuracy figures.

Latency is measured against the known layout of the concatenated clips and the client's own
send times, never against timestamps the server reports, so a server cannot flatter itself.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from asrclient import StreamResult
from bench.evaluation import ClipSpan, ConcatenatedSession, word_error_rate


@dataclass(frozen=True)
class Result:
    """A partial or final with its arrival time (monotonic seconds)."""

    kind: str
    segment: Any
    text: str
    start: float
    end: float
    arrival: float
    reason: str = ""


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float | int | None]:
    """n, mean, p50, p95 and max (in ms by default); None when there is nothing to summarise."""
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "max": None}
    arr = np.asarray(values, dtype=float) * scale
    return {
        "n": len(values),
        "mean": round(float(arr.mean()), 1),
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "max": round(float(arr.max()), 1),
    }


def _results(stream: StreamResult, kind: str) -> list[Result]:
    out = []
    for message in stream.of_type(kind):
        d = message.data
        try:
            start, end = float(d["start"]), float(d["end"])
        except (KeyError, TypeError, ValueError):
            start = end = float("nan")
        text = str(d.get("text") or "").strip()
        reason = str(d.get("reason", ""))
        out.append(Result(kind, d.get("segment"), text, start, end, message.arrival, reason))
    return out


def _overlap(result: Result, clip: ClipSpan) -> float:
    return max(0.0, min(result.end, clip.end_s) - max(result.start, clip.start_s))


def _best_clip(result: Result, clips: list[ClipSpan]) -> int | None:
    overlaps = [_overlap(result, clip) for clip in clips]
    best = int(np.argmax(overlaps))
    return best if overlaps[best] > 0 else None


class FrameClock:
    """When the frame holding a given session sample was sent."""

    def __init__(self, stream: StreamResult):
        self.ends = [f.end_sample for f in stream.frames]
        self.sent = [f.sent_at for f in stream.frames]

    def sent_at(self, sample: int) -> float | None:
        i = bisect.bisect_right(self.ends, sample)
        return self.sent[i] if i < len(self.sent) else None


def analyse(stream: StreamResult, session: ConcatenatedSession) -> dict[str, Any]:
    """Per-clip latency and text, plus the session-wide figures the report prints."""
    clips = session.clips
    clock = FrameClock(stream)
    finals = [f for f in _results(stream, "final") if f.text]
    partials = _results(stream, "partial")
    final_clip = {id(f): _best_clip(f, clips) for f in finals}
    segment_clip = {f.segment: final_clip[id(f)] for f in finals}
    by_clip: dict[int, list[Result]] = {i: [] for i in range(len(clips))}
    for f in finals:
        index = final_clip[id(f)]
        if index is not None:
            by_clip[index].append(f)
    partials_by_clip: dict[int, list[Result]] = {i: [] for i in range(len(clips))}
    for p in partials:
        index = segment_clip[p.segment] if p.segment in segment_clip else _best_clip(p, clips)
        if index is not None:
            partials_by_clip[index].append(p)

    rows: list[dict[str, Any]] = []
    latencies, first_partials = [], []
    for i, clip in enumerate(clips):
        matched = sorted(by_clip[i], key=lambda f: f.start)
        last_sent = clock.sent_at(clip.end_sample - 1)
        first_sent = clock.sent_at(clip.start_sample)
        latency = ttfp = None
        if matched and last_sent is not None:
            latency = max(f.arrival for f in matched) - last_sent
            latencies.append(latency)
        if partials_by_clip[i] and first_sent is not None:
            ttfp = min(p.arrival for p in partials_by_clip[i]) - first_sent
            first_partials.append(ttfp)
        rows.append(
            {
                "clip": clip.name,
                "start_s": round(clip.start_s, 2),
                "end_s": round(clip.end_s, 2),
                "finals": len(matched),
                "final_latency_ms": None if latency is None else round(latency * 1000, 1),
                "first_partial_ms": None if ttfp is None else round(ttfp * 1000, 1),
                "end_error_ms": round((matched[-1].end - clip.end_s) * 1000) if matched else None,
                "reference": clip.reference,
                "hypothesis": " ".join(f.text for f in matched),
            }
        )

    gaps = []
    for segment in {p.segment for p in partials}:
        arrivals = sorted(p.arrival for p in partials if p.segment == segment)
        gaps += [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]

    substantial = [sum(_overlap(f, c) >= min(0.3, 0.5 * (c.end_s - c.start_s)) for c in clips) for f in finals]
    all_finals = sorted(finals, key=lambda f: f.start)
    send_lag = [f.sent_at - f.scheduled_at for f in stream.frames] if stream.realtime else []
    return {
        "clips": rows,
        "final_latency_ms": summary(latencies),
        "first_partial_ms": summary(first_partials),
        "partial_interval_ms": summary(gaps),
        "wer_streamed": word_error_rate([c.reference for c in clips], [r["hypothesis"] for r in rows]),
        "wer_streamed_session": word_error_rate(
            [" ".join(c.reference for c in clips)], [" ".join(f.text for f in all_finals)]
        ),
        "counts": {
            "clips": len(clips),
            "finals": len(finals),
            "empty_finals": len(stream.of_type("final")) - len(finals),
            "partials": len(partials),
            "clips_without_final": sum(not by_clip[i] for i in range(len(clips))),
            "clips_split": sum(len(by_clip[i]) > 1 for i in range(len(clips))),
            "finals_merging_clips": sum(n > 1 for n in substantial),
            "finals_outside_speech": sum(final_clip[id(f)] is None for f in finals),
            "final_reasons": dict(Counter(f.reason for f in finals)),
        },
        "client_send_lag_ms": summary(send_lag),
    }


STATS = ("p50", "p95", "max", "mean")
HOP_TARGET_P95_MS = 10.0  # issue 4: the Celery hop adds at most 10 ms p95 on loopback


def _minus(b: dict[str, Any], a: dict[str, Any]) -> dict[str, float | None]:
    return {k: None if a.get(k) is None or b.get(k) is None else round(b[k] - a[k], 1) for k in STATS}


def compare(embedded: dict[str, Any], celery: dict[str, Any], hop: dict[str, Any]) -> dict[str, Any]:
    """Celery dispatch against embedded dispatch on the same audio (both from `analyse`)."""
    out: dict[str, Any] = {}
    for key in ("final_latency_ms", "first_partial_ms", "partial_interval_ms"):
        out[key] = {
            "embedded": embedded[key],
            "celery": celery[key],
            "celery_minus_embedded": _minus(celery[key], embedded[key]),
        }
    pairs = [
        (e["clip"], e["final_latency_ms"], c["final_latency_ms"])
        for e, c in zip(embedded["clips"], celery["clips"], strict=True)
    ]
    diffs = [c - e for _, e, c in pairs if e is not None and c is not None]
    out["final_latency_per_clip_diff_ms"] = summary(diffs, scale=1.0)  # celery - embedded, clip by clip
    out["clips"] = [
        {
            "clip": name,
            "embedded_ms": e,
            "celery_ms": c,
            "same_text": ec["hypothesis"] == cc["hypothesis"],
        }
        for (name, e, c), ec, cc in zip(pairs, embedded["clips"], celery["clips"], strict=True)
    ]
    out["same_text_clips"] = sum(row["same_text"] for row in out["clips"])
    out["wer_streamed"] = {"embedded": embedded["wer_streamed"], "celery": celery["wer_streamed"]}
    out["finals"] = {"embedded": embedded["counts"]["finals"], "celery": celery["counts"]["finals"]}
    hop_p95 = hop["round_trip_ms"]["p95"]
    out["hop_round_trip_ms"] = hop["round_trip_ms"]
    out["target"] = {
        "hop_p95_ms_at_most": HOP_TARGET_P95_MS,
        "hop_p95_ms": hop_p95,
        "met": hop_p95 is not None and hop_p95 <= HOP_TARGET_P95_MS and not hop["lost"],
        # The end-to-end view of the same question; one run of 14 clips, so noisier than the hop.
        "final_latency_p95_diff_ms": out["final_latency_ms"]["celery_minus_embedded"]["p95"],
        "final_latency_per_clip_diff_p50_ms": out["final_latency_per_clip_diff_ms"]["p50"],
    }
    return out
