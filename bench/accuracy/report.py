"""The accuracy table, and the issue's targets read off it."""

from __future__ import annotations

from collections.abc import Sequence

from bench.accuracy.measure import Row

REAL_CLEAN_WER = 0.036  # streamed WER on real/ with the default model when the targets were set
NOISE_20DB_MAX_WER = 0.10
LONG_MAX_GAP_POINTS = 2.0
ZH_MAX_GAP_POINTS = 1.0


def render(rows: Sequence[Row], *, header: str) -> str:
    lines = [
        header,
        "",
        "| condition | clips | audio s | model | metric | streamed | offline | gap (points) "
        "| RTF streamed | RTF offline |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {len(r.clips)} | {r.audio_s:.1f} | {r.system} | {r.metric} "
            f"| {100 * r.streamed.error_rate:.1f} % | {100 * r.offline.error_rate:.1f} % | {r.gap_points:+.1f} "
            f"| {r.streamed.rtf:.3f} | {r.offline.rtf:.3f} |"
        )
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets(rows: Sequence[Row], *, default_model: str) -> list[str]:
    """One line per target the rows can judge; the clips may be a subset (--quick), so say which."""
    lines = []
    for r in rows:
        noisy_20 = r.condition.endswith("-20db") and r.system == default_model
        if noisy_20:
            ok = r.streamed.error_rate <= NOISE_20DB_MAX_WER
            what = f"streamed WER {100 * r.streamed.error_rate:.1f} % ≤ {100 * NOISE_20DB_MAX_WER:g} %"
            lines.append(f"{r.label}, {r.system}: {what}: {_verdict(ok)}")
        elif r.condition == "long":
            ok = r.gap_points <= LONG_MAX_GAP_POINTS
            what = f"streamed − offline WER {r.gap_points:+.1f} points ≤ {LONG_MAX_GAP_POINTS:g}"
            lines.append(f"long/, {r.system}: {what}: {_verdict(ok)}")
        elif r.condition == "zh":
            ok = r.gap_points <= ZH_MAX_GAP_POINTS
            what = f"streamed − offline CER {r.gap_points:+.1f} points ≤ {ZH_MAX_GAP_POINTS:g}"
            lines.append(f"zh/ + zh-read/, {r.system}: {what}: {_verdict(ok)}")
        elif r.condition == "clean" and r.system == default_model:
            ok = r.streamed.error_rate <= REAL_CLEAN_WER + 1e-9
            what = f"streamed WER {100 * r.streamed.error_rate:.1f} % ≤ {100 * REAL_CLEAN_WER:.1f} % (no regression)"
            lines.append(f"real/ clean, {r.system}: {what}: {_verdict(ok)}")
    return lines
