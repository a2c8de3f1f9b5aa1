"""Per-level figures of the load sweep, pooled over every client, and the SLO decision.

Final latency, first partial and WER come from `bench.metrics.analyse` (one definition for the
single-stream and the load benchmark); only the partial gap during speech is defined here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from transcription.client import StreamResult
from transcription.evaluation import ConcatenatedSession, word_error_rate

from .metrics import FrameClock, _best_clip, _results, analyse, summary


@dataclass(frozen=True)
class Slo:
    """What a level must meet; None switches a criterion off."""

    final_p95_ms: float | None = 1300.0
    partial_gap_max_ms: float | None = 1500.0
    max_errors: int | None = 0
    max_wer: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def speech_gaps(stream: StreamResult, session: ConcatenatedSession) -> list[float]:
    """Seconds the listener waited for news while each clip's speech was being sent.

    Per clip, from the send of its first sample to its first partial, between its partials (and
    finals), and from the last of those to the send of its last sample: the SLO "a partial at
    least every 1.5 s during speech". The wait for the final after speech ends is final latency.
    """
    clips = session.clips
    clock = FrameClock(stream)
    finals = [f for f in _results(stream, "final") if f.text]
    segment_clip = {f.segment: _best_clip(f, clips) for f in finals}
    updates: dict[int, list[float]] = defaultdict(list)
    for r in [*_results(stream, "partial"), *finals]:
        index = segment_clip[r.segment] if r.segment in segment_clip else _best_clip(r, clips)
        if index is not None:
            updates[index].append(r.arrival)
    gaps: list[float] = []
    for index, clip in enumerate(clips):
        first, last = clock.sent_at(clip.start_sample), clock.sent_at(clip.end_sample - 1)
        if first is None or last is None:
            continue  # the stream ended before this clip was sent; problem() says why
        points = [first, *sorted(a for a in updates[index] if first < a < last), last]
        gaps += [b - a for a, b in zip(points, points[1:], strict=False)]
    return gaps


def _partial_intervals(stream: StreamResult) -> list[float]:
    """Between consecutive partials of one segment: `analyse`'s partial_interval, unsummarised."""
    by_segment: dict[Any, list[float]] = defaultdict(list)
    for p in _results(stream, "partial"):
        by_segment[p.segment].append(p.arrival)
    out: list[float] = []
    for arrivals in by_segment.values():
        arrivals.sort()
        out += [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return out


@dataclass
class ClientOutcome:
    """One client's session at one level: what it streamed and what came back (or why not)."""

    client: int
    offset_s: float
    session: ConcatenatedSession
    result: StreamResult | None
    error: str | None = None  # no result at all: the connection failed

    @property
    def problem(self) -> str | None:
        return self.error or (self.result.problem() if self.result is not None else "no result")


def level_figures(outcomes: list[ClientOutcome]) -> dict[str, Any]:
    """Latency, gaps, first partial, WER and errors of one level, over all its clients."""
    latencies, first_partials, gaps, intervals, send_lag = [], [], [], [], []
    references, hypotheses = [], []
    finals = partials = missing = clips = 0
    for o in outcomes:
        if o.result is None:
            continue
        m = analyse(o.result, o.session)
        for row in m["clips"]:
            if row["final_latency_ms"] is not None:
                latencies.append(row["final_latency_ms"] / 1000)
            if row["first_partial_ms"] is not None:
                first_partials.append(row["first_partial_ms"] / 1000)
            references.append(row["reference"])
            hypotheses.append(row["hypothesis"])
        counts = m["counts"]
        finals, partials = finals + counts["finals"], partials + counts["partials"]
        missing, clips = missing + counts["clips_without_final"], clips + counts["clips"]
        gaps += speech_gaps(o.result, o.session)
        intervals += _partial_intervals(o.result)
        send_lag += [f.sent_at - f.scheduled_at for f in o.result.frames]
    problems = [f"client {o.client}: {o.problem}" for o in outcomes if o.problem]
    return {
        "clients": len(outcomes),
        "audio_s": round(sum(o.session.duration_s for o in outcomes), 1),
        "final_latency_ms": summary(latencies),
        "partial_gap_in_speech_ms": summary(gaps),
        "partial_interval_ms": summary(intervals),
        "first_partial_ms": summary(first_partials),
        "wer": round(word_error_rate(references, hypotheses), 4) if references else None,
        "counts": {"clips": clips, "clips_without_final": missing, "finals": finals, "partials": partials},
        "client_send_lag_ms": summary(send_lag),
        "errors": len(problems),
        "first_errors": problems[:5],
    }


def slo_failures(figures: dict[str, Any], slo: Slo) -> list[str]:
    """Why a level breaks the SLO; empty when it meets it. A level with no figure to judge fails."""
    failures = []
    p95 = figures["final_latency_ms"]["p95"]
    if slo.final_p95_ms is not None and (p95 is None or p95 > slo.final_p95_ms):
        failures.append(f"final latency p95 {p95} ms > {slo.final_p95_ms:g} ms")
    gap = figures["partial_gap_in_speech_ms"]["max"]
    if slo.partial_gap_max_ms is not None and (gap is None or gap > slo.partial_gap_max_ms):
        failures.append(f"partial gap in speech max {gap} ms > {slo.partial_gap_max_ms:g} ms")
    if slo.max_errors is not None and figures["errors"] > slo.max_errors:
        failures.append(f"{figures['errors']} errors > {slo.max_errors}")
    wer = figures["wer"]
    if slo.max_wer is not None and (wer is None or wer > slo.max_wer):
        failures.append(f"WER {wer} > {slo.max_wer:g}")
    return failures


def capacity(levels: list[dict[str, Any]]) -> int:
    """The largest N that met the SLO with every level before it met too (0: not even the first)."""
    best = 0
    for level in levels:
        if not level["slo_ok"]:
            break
        best = max(best, level["n"])
    return best
