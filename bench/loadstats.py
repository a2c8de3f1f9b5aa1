"""Per-level figures of the load sweep, pooled over every client, and the SLO decision.

Final latency, first partial and WER come from `bench.metrics.analyse` (one definition for the
single-stream and the load benchmark); the partial gap during speech and the partial lag are
defined here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from asrclient import StreamResult
from bench.evaluation import ConcatenatedSession, word_error_rate

from .metrics import FrameClock, _results, analyse, summary


@dataclass(frozen=True)
class Slo:
    """What a level must meet; None switches a criterion off."""

    final_p95_ms: float | None = 1300.0
    partial_gap_max_ms: float | None = 1500.0
    max_errors: int | None = 0
    max_wer: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SPEECH_WINDOW_S = 0.03
SPEECH_BELOW_PEAK_DB = 30.0  # a window this far below the clip's loudest is a pause
SPEECH_FLOOR_DB = -60.0  # dBFS; a clip never louder than this holds no speech
SPEECH_BRIDGE_S = 0.5  # pauses shorter than this stay inside the stretch of speech


def speech_regions(samples: np.ndarray, sample_rate: int) -> list[tuple[int, int]]:
    """Stretches of speech in one clip, as [start, end) sample offsets, from the audio's own energy.

    Ground truth from the audio rather than from the server's VAD: a clip's leading and trailing
    silence and a speaker's pauses are not time during which a partial was owed.
    """
    width = max(1, round(SPEECH_WINDOW_S * sample_rate))
    count = len(samples) // width
    if count == 0:
        return []
    windows = samples[: count * width].astype(np.float64).reshape(count, width)
    level = 20 * np.log10(np.sqrt(np.mean(windows**2, axis=1)) + 1e-10)
    if level.max() < SPEECH_FLOOR_DB:
        return []  # nothing audible
    voiced = np.flatnonzero(level >= level.max() - SPEECH_BELOW_PEAK_DB)
    bridge = SPEECH_BRIDGE_S / SPEECH_WINDOW_S
    regions, start, previous = [], int(voiced[0]), int(voiced[0])
    for index in voiced[1:].tolist():
        if index - previous > bridge:
            regions.append((start * width, (previous + 1) * width))
            start = index
        previous = index
    regions.append((start * width, (previous + 1) * width))
    return regions


@dataclass(frozen=True)
class SpeechGap:
    seconds: float
    clip: str
    at_s: float  # where in the clip the wait began (seconds of audio, as paced in real time)


def speech_gaps(stream: StreamResult, session: ConcatenatedSession) -> list[SpeechGap]:
    """How long the listener waited for news while speech was being sent.

    For each stretch of speech (`speech_regions`): from the send of its first sample to the first
    partial or final about it (one whose audio span overlaps it), between those, and from the last
    one to the send of its last sample. The SLO reads this as "a partial at least every 1.5 s during
    speech"; the wait for the final after speech ends is final latency's business.
    """
    rate = session.sample_rate
    clock = FrameClock(stream)
    news = [(r.start, r.end, r.arrival) for kind in ("partial", "final") for r in _results(stream, kind) if r.text]
    gaps: list[SpeechGap] = []
    for clip in session.clips:
        for begin, end in speech_regions(session.audio[clip.start_sample : clip.end_sample], rate):
            first = clock.sent_at(clip.start_sample + begin)
            last = clock.sent_at(clip.start_sample + end - 1)
            if first is None or last is None:
                continue  # the stream ended before this was sent; problem() says why
            a_s, b_s = (clip.start_sample + begin) / rate, (clip.start_sample + end) / rate
            arrivals = sorted(t for s, e, t in news if s < b_s and e > a_s and first < t < last)
            points = [first, *arrivals, last]
            for a, b in zip(points, points[1:], strict=False):
                gaps.append(SpeechGap(b - a, clip.name, round(begin / rate + a - first, 2)))
    return gaps


def _partial_lags(stream: StreamResult) -> list[float]:
    """How old each partial's newest audio is when it arrives: its end sample's send → its arrival."""
    clock = FrameClock(stream)
    lags = []
    for p in _results(stream, "partial"):
        if math.isnan(p.end):
            continue
        if (sent := clock.sent_at(max(0, round(p.end * stream.sample_rate) - 1))) is not None:
            lags.append(p.arrival - sent)
    return lags


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


def level_figures(outcomes: list[ClientOutcome], offline: dict[str, str] | None = None) -> dict[str, Any]:
    """Latency, gaps, first partial, WER and errors of one level, over all its clients.

    ``offline``: clip name → the same model's offline hypothesis; gives ``offline_wer`` over exactly
    the clips of this level, so streamed and offline WER compare on the same audio.
    """
    latencies, first_partials, intervals, lags, send_lag = [], [], [], [], []
    gaps: list[tuple[int, SpeechGap]] = []
    references, hypotheses, clip_names = [], [], []
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
            clip_names.append(row["clip"])
        counts = m["counts"]
        finals, partials = finals + counts["finals"], partials + counts["partials"]
        missing, clips = missing + counts["clips_without_final"], clips + counts["clips"]
        gaps += [(o.client, gap) for gap in speech_gaps(o.result, o.session)]
        intervals += _partial_intervals(o.result)
        lags += _partial_lags(o.result)
        send_lag += [f.sent_at - f.scheduled_at for f in o.result.frames]
    problems = [f"client {o.client}: {o.problem}" for o in outcomes if o.problem]
    return {
        "clients": len(outcomes),
        "audio_s": round(sum(o.session.duration_s for o in outcomes), 1),
        "final_latency_ms": summary(latencies),
        "partial_gap_in_speech_ms": summary([gap.seconds for _, gap in gaps]),
        "longest_partial_gaps": [
            {"client": client, "clip": gap.clip, "at_s": gap.at_s, "ms": round(gap.seconds * 1000)}
            for client, gap in sorted(gaps, key=lambda item: -item[1].seconds)[:5]
        ],
        "partial_interval_ms": summary(intervals),
        "partial_lag_ms": summary(lags),
        "first_partial_ms": summary(first_partials),
        "wer": round(word_error_rate(references, hypotheses), 4) if references else None,
        "offline_wer": (
            round(word_error_rate(references, [offline[c] for c in clip_names]), 4) if references and offline else None
        ),
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
