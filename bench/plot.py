"""The load sweep as a PNG: latency, partial gaps and WER against concurrent streams, SLO and capacity.

matplotlib with the Agg backend (no display), imported only when a plot is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PEER_COLORS = ("grey", "tab:purple", "tab:brown")  # one per peer run beside ours


def _series(levels: list[dict[str, Any]], key: str, stat: str) -> list[float]:
    return [float("nan") if level[key][stat] is None else level[key][stat] for level in levels]


def broken_figures(level: dict[str, Any], slo: dict[str, Any]) -> list[tuple[str, float]]:
    """The (panel, value) of each figure of a level over its SLO bound: where the plot puts its cross.

    An error-only failure has no figure to mark; it still shades the failing region.
    """
    marks = []
    p95, gap = level["final_latency_ms"]["p95"], level["partial_gap_in_speech_ms"]["max"]
    if slo["final_p95_ms"] is not None and (p95 is None or p95 > slo["final_p95_ms"]):
        marks.append(("final", p95 or 0.0))
    if slo["partial_gap_max_ms"] is not None and (gap is None or gap > slo["partial_gap_max_ms"]):
        marks.append(("gap", gap or 0.0))
    if slo.get("max_wer") is not None and (level["wer"] is None or level["wer"] > slo["max_wer"]):
        marks.append(("wer", 100 * (level["wer"] or 0.0)))
    return marks


def plot_load(figures: dict[str, Any], path: Path) -> None:
    """Three panels sharing N: final latency p50/p95/max, partial gap in speech, WER."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels, slo = figures["levels"], figures["slo"]
    ns = [level["n"] for level in levels]
    fig, (lat, gap, wer) = plt.subplots(3, 1, sharex=True, figsize=(8, 9), height_ratios=(3, 2, 2))
    for stat, style in (("p50", "o-"), ("p95", "s-"), ("max", "^:")):
        lat.plot(ns, _series(levels, "final_latency_ms", stat), style, label=f"final latency {stat}")
    if slo["final_p95_ms"] is not None:
        lat.axhline(slo["final_p95_ms"], color="red", linestyle="--", label=f"SLO p95 {slo['final_p95_ms']:g} ms")
    lat.set_ylabel("ms after last audio sent")
    for stat, style in (("p95", "s-"), ("max", "^:")):
        gap.plot(ns, _series(levels, "partial_gap_in_speech_ms", stat), style, label=f"partial gap in speech {stat}")
    if slo["partial_gap_max_ms"] is not None:
        gap.axhline(
            slo["partial_gap_max_ms"], color="red", linestyle="--", label=f"SLO max {slo['partial_gap_max_ms']:g} ms"
        )
    gap.set_ylabel("ms")
    wer.plot(ns, [float("nan") if level["wer"] is None else 100 * level["wer"] for level in levels], "o-", label="WER")
    if slo.get("max_wer") is not None:
        wer.axhline(100 * slo["max_wer"], color="red", linestyle="--", label=f"SLO {slo['max_wer']:.0%}")
    wer.set_ylabel("WER %")
    wer.set_xlabel("concurrent real-time streams (N)")
    peers = figures.get("peers") or ([figures["peer"]] if figures.get("peer") else [])  # "peer": older runs
    for peer, color in zip(peers, PEER_COLORS, strict=False):  # each peer's p95 and WER, dashed, on the same axes
        peer_ns = [level["n"] for level in peer["levels"]]
        name = peer["target"]["name"].split(" (")[0]
        lat.plot(peer_ns, _series(peer["levels"], "final_latency_ms", "p95"), "s--", color=color, label=f"{name} p95")
        peer_gap = _series(peer["levels"], "partial_gap_in_speech_ms", "max")
        gap.plot(peer_ns, peer_gap, "^--", color=color, label=f"{name} max")
        peer_wer = [float("nan") if lv["wer"] is None else 100 * lv["wer"] for lv in peer["levels"]]
        wer.plot(peer_ns, peer_wer, "o--", color=color, label=f"{name} WER")
    failed = [level for level in levels if not level["slo_ok"]]
    if failed:
        first = failed[0]
        panels = {"final": lat, "gap": gap, "wer": wer}
        for panel, value in broken_figures(first, slo):
            panels[panel].plot([first["n"]], [value], "rx", markersize=12, label=f"SLO broken at N={first['n']}")
    for ax in (lat, gap, wer):
        if figures["capacity"]:
            ax.axvline(figures["capacity"], color="green", alpha=0.6, label=f"capacity {figures['capacity']}")
        if failed:
            ax.axvspan(failed[0]["n"] - 0.5, max(ns) + 0.5, color="red", alpha=0.07)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    config = figures["config"]
    held = "" if figures["first_failing_n"] else " (SLO held at every level run)"
    fig.suptitle(
        f"{figures['target']['name']}: capacity {figures['capacity']} streams{held}\n"
        f"({config['cpu_count']} cores, ~{config['session_s']:g} s sessions in real time)",
        fontsize=11,
    )
    lat.set_xticks(sorted(set(ns) | {level["n"] for peer in peers for level in peer["levels"]}))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
