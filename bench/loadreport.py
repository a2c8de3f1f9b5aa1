"""`python -m bench load`'s tables: one row per level, the sweep, and two systems side by side."""

from __future__ import annotations

from typing import Any


def _v(value: Any, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


HEADER = (
    f"{'N':>4} {'final p50':>9} {'p95':>6} {'max':>6} {'gap p95':>8} {'max':>6} {'1st p50':>8} "
    f"{'WER':>6} {'offl':>6} {'cpu%':>6} {'/box':>5} {'RSS MiB':>9} {'bench%':>7} {'err':>4}  SLO"
)


def render_row(level: dict[str, Any]) -> str:
    final, gap = level["final_latency_ms"], level["partial_gap_in_speech_ms"]
    server = level["server"]
    peaks = dict(server["peak_rss_mib"])
    first = peaks.pop("gateway", None) or peaks.pop("server", None)
    rss = "-" if first is None else f"{first:.0f}"
    if peaks:  # Celery dispatch: the gateway's, then all workers' together
        rss += f"+{sum(peaks.values()):.0f}"
    verdict = "ok" if level["slo_ok"] else "FAIL: " + "; ".join(level["slo_failures"])
    return (
        f"{level['n']:>4} {_v(final['p50']):>9} {_v(final['p95']):>6} {_v(final['max']):>6} "
        f"{_v(gap['p95']):>8} {_v(gap['max']):>6} {_v(level['first_partial_ms']['p50']):>8} "
        f"{_v(level['wer'], '{:.1%}'):>6} {_v(level.get('offline_wer'), '{:.1%}'):>6} "
        f"{_v(server['cpu_pct']):>6} {_v(server['cpu_pct_of_machine']):>5} "
        f"{rss:>9} {_v(level['bench_client']['cpu_pct']):>7} {level['errors']:>4}  {verdict}"
    )


def render(figures: dict[str, Any]) -> str:
    """One row per N, then the capacity and the first errors of any level that had them."""
    config, slo = figures["config"], figures["slo"]
    lines = [
        f"load sweep - {figures['target']['name']}, {config['cpu_count']} cores; sessions of "
        f"~{config['session_s']:g} s, {config['gap_s']:g} s gaps, real time, starts over {config['ramp_s']:g} s",
        f"SLO: final p95 <= {_v(slo['final_p95_ms'])} ms, partial gap in speech <= "
        f"{_v(slo['partial_gap_max_ms'])} ms, errors <= {_v(slo['max_errors'])}"
        + (f", WER <= {slo['max_wer']:.1%}" if slo["max_wer"] is not None else ""),
        "latencies in ms; server cpu% of one core (gateway + workers), /box: of all cores; bench%: this "
        "client's own cpu% of one core; RSS: peak, gateway+workers",
        "",
        HEADER,
        *(render_row(level) for level in figures["levels"]),
        "",
        f"capacity: {figures['capacity']} concurrent streams"
        + (f" (first failing N: {figures['first_failing_n']})" if figures["first_failing_n"] else " (SLO never broke)"),
    ]
    if figures.get("warmup_problem"):
        lines.append(f"WARM-UP PROBLEM: {figures['warmup_problem']}")
    for level in figures["levels"]:
        for problem in level["first_errors"]:
            lines.append(f"  N={level['n']} error: {problem}")
        if not level["slo_ok"]:
            worst = ", ".join(
                f"{g['ms']} ms (client {g['client']}, {g['clip']} at {g['at_s']:g} s)"
                for g in level["longest_partial_gaps"][:3]
            )
            lines.append(f"  N={level['n']} longest partial gaps in speech: {worst or '-'}")
    return "\n".join(lines)


def render_side_by_side(ours: dict[str, Any], peers: list[dict[str, Any]]) -> str:
    """Every system on one table: capacities, then each level as every system ran it."""
    from .results_log import system_of

    systems = [("asrplatform", ours), *((system_of(peer["target"]["name"]), peer) for peer in peers)]
    by_n = [(name, {level["n"]: level for level in run["levels"]}) for name, run in systems]
    capacities = ", ".join(f"{run['target']['name']} {run['capacity']}" for _, run in systems)
    lines = [
        f"side by side - same audio, pacing, model and SLO; capacity: {capacities}",
        f"{'N':>4} {'system':<14} {'final p50':>9} {'p95':>6} {'max':>6} {'gap max':>8} {'WER':>6} "
        f"{'cpu%':>6} {'err':>4}  SLO",
    ]
    for level in ours["levels"]:
        for name, levels in by_n:
            if (row := levels.get(level["n"])) is None:
                continue
            final = row["final_latency_ms"]
            lines.append(
                f"{row['n']:>4} {name:<14} {_v(final['p50']):>9} {_v(final['p95']):>6} {_v(final['max']):>6} "
                f"{_v(row['partial_gap_in_speech_ms']['max']):>8} {_v(row['wer'], '{:.1%}'):>6} "
                f"{_v(row['server']['cpu_pct']):>6} {row['errors']:>4}  {'ok' if row['slo_ok'] else 'FAIL'}"
            )
    return "\n".join(lines)
