"""Plain-text tables for the benchmark figures (the JSON file carries the same data)."""

from __future__ import annotations

from typing import Any


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f}"


def _stat_row(label: str, stats: dict[str, Any]) -> str:
    cells = (_ms(stats["p50"]), _ms(stats["p95"]), _ms(stats["max"]), _ms(stats["mean"]))
    return f"  {label:<34}" + "".join(f"{c:>9}" for c in cells) + f"{stats['n']:>6}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def render(figures: dict[str, Any]) -> str:
    """The summary tables followed by one line per clip."""
    m = figures["stream"]
    counts = m["counts"]
    lines = [
        f"asrplatform benchmark - {figures['audio_s']:.1f} s of audio, {counts['clips']} clips, "
        f"{figures['config']['gap_s']:g} s gaps, {figures['config']['chunk_ms']} ms frames, "
        f"endpointing {figures['config']['endpointing_ms']} ms, "
        f"{'real time' if figures['config']['realtime'] else 'as fast as possible'}",
        "",
        f"  {'latency (ms)':<34}{'p50':>9}{'p95':>9}{'max':>9}{'mean':>9}{'n':>6}",
        _stat_row("final after last sample sent", m["final_latency_ms"]),
        _stat_row("first partial after first sample", m["first_partial_ms"]),
        _stat_row("interval between partials", m["partial_interval_ms"]),
        _stat_row("client send lag (schedule slip)", m["client_send_lag_ms"]),
        "",
        f"  {'accuracy':<34}{'WER':>9}",
        f"  {'streamed finals (per clip)':<34}{_pct(m['wer_streamed']):>9}",
        f"  {'streamed finals (whole session)':<34}{_pct(m['wer_streamed_session']):>9}",
        f"  {'offline, each clip alone':<34}{_pct(figures.get('offline', {}).get('wer')):>9}",
        "",
        f"  endpointing: {counts['finals']} finals for {counts['clips']} clips; "
        f"{counts['clips_split']} clips split, {counts['finals_merging_clips']} finals merging "
        f"clips, {counts['clips_without_final']} clips without a final, "
        f"{counts['finals_outside_speech']} finals outside speech, "
        f"{counts['empty_finals']} empty finals; reasons {counts['final_reasons']}",
    ]
    server = figures.get("server") or {}
    if server.get("cpu_s_per_audio_s") is not None:
        lines.append(
            f"  server: {server['cpu_s_per_audio_s']:.3f} CPU s per audio s "
            f"({server['cpu_s']:.1f} CPU s), peak RSS {server['peak_rss_bytes'] / 2**20:.0f} MiB"
        )
    else:
        lines.append("  server: CPU and memory not measured (external server without --server-pid)")
    if server.get("warmup_problem"):
        lines.append(f"  WARM-UP PROBLEM: {server['warmup_problem']}")
    if figures.get("problem"):
        lines.append(f"  PROBLEM: {figures['problem']}")
    lines += ["", f"  {'clip':<18}{'at s':>7}{'finals':>7}{'final ms':>10}{'1st part':>10}  text"]
    for row in m["clips"]:
        lines.append(
            f"  {row['clip']:<18}{row['start_s']:>7.1f}{row['finals']:>7}"
            f"{_ms(row['final_latency_ms']):>10}{_ms(row['first_partial_ms']):>10}  "
            f"{row['hypothesis'] or '-'}"
        )
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0f}"


def _diff_row(label: str, diff: dict[str, Any]) -> str:
    cells = [_signed(diff[k]) for k in ("p50", "p95", "max", "mean")]
    return f"  {label:<34}" + "".join(f"{c:>9}" for c in cells)


def _cpu(server: dict[str, Any]) -> str:
    if server.get("cpu_s_per_audio_s") is None:
        return "-"
    text = f"{server['cpu_s_per_audio_s']:.3f}"
    if server.get("workers_cpu_s") is not None:
        workers = sum(server["workers_cpu_s"].values())
        text += f" (gateway {server['gateway_cpu_s']:.1f} CPU s, workers {workers:.1f} CPU s)"
    return text


def _header(label: str) -> str:
    return f"  {label:<34}{'p50':>9}{'p95':>9}{'max':>9}{'mean':>9}{'n':>6}"


def render_comparison(figures: dict[str, Any]) -> str:
    """Embedded against Celery dispatch (same audio, same run), and the worker hop."""
    c = figures["comparison"]
    hop = figures["hop"]
    celery = figures["celery"]
    workers = ", ".join(w["id"] for w in celery["stack"]["workers"])
    pinned = celery["stack"].get("sessions_pinned_to") or []
    if pinned:
        workers += f" (warm-ups on {', '.join(pinned[:-1]) or '-'}; measured session on {pinned[-1]})"
    final, first = c["final_latency_ms"], c["first_partial_ms"]
    lines = [
        f"embedded vs Celery dispatch - the same {figures['audio_s']:.1f} s stream, one run",
        f"  workers {workers}",
        "",
        _header("final after last sample sent (ms)"),
        _stat_row("embedded", final["embedded"]),
        _stat_row("celery", final["celery"]),
        _diff_row("celery - embedded", final["celery_minus_embedded"]),
        _stat_row("clip by clip, celery - embedded", c["final_latency_per_clip_diff_ms"]),
        "",
        _header("first partial (ms)"),
        _stat_row("embedded", first["embedded"]),
        _stat_row("celery", first["celery"]),
        _diff_row("celery - embedded", first["celery_minus_embedded"]),
    ]
    lines += [
        "",
        _header("hop gateway>worker>gateway (ms)"),
        _stat_row("asr.ping round trip", hop["round_trip_ms"]),
        _stat_row("  of which publishing (send_task)", hop["publish_ms"]),
        f"  {hop['received']} of {hop['sent']} pongs back ({hop['lost']} lost), one every "
        f"{hop['interval_ms']:g} ms to the idle {hop['queue']}, after {hop['warmup']} unmeasured",
    ]
    under = figures.get("hop_under_load")
    if under:
        lines += ["", _header(f"same, during the stream, every {under['interval_ms']:g} ms")]
        for worker, probe in sorted(under["workers"].items(), key=lambda kv: kv[0] != under["session_worker"]):
            role = "worker holding the session" if worker == under["session_worker"] else "the other, idle worker"
            lines.append(_stat_row(role, probe["round_trip_ms"]))
            if probe["lost"]:
                lines.append(f"    {probe['lost']} of {probe['sent']} pings to {worker} lost")
    lines += [
        "",
        f"  target: the hop adds <= {c['target']['hop_p95_ms_at_most']:g} ms p95 - measured p95 "
        f"{_ms(c['target']['hop_p95_ms'])} ms: {'met' if c['target']['met'] else 'NOT met'}; "
        f"end to end, final latency p95 {_signed(c['target']['final_latency_p95_diff_ms'])} ms, "
        f"median clip {_signed(c['target']['final_latency_per_clip_diff_p50_ms'])} ms",
        f"  accuracy: streamed WER embedded {_pct(c['wer_streamed']['embedded'])}, "
        f"celery {_pct(c['wer_streamed']['celery'])}; finals {c['finals']['embedded']} / "
        f"{c['finals']['celery']}; same text on {c['same_text_clips']} of {len(c['clips'])} clips",
        f"  CPU s per audio s: embedded {_cpu(figures.get('server') or {})}; celery {_cpu(celery.get('server') or {})}",
    ]
    if celery.get("server", {}).get("warmup_problem"):
        lines.append(f"  CELERY WARM-UP PROBLEM: {celery['server']['warmup_problem']}")
    if celery.get("problem"):
        lines.append(f"  CELERY PROBLEM: {celery['problem']}")
    lines += ["", f"  {'clip':<18}{'embedded':>10}{'celery':>10}{'diff':>8}  same text"]
    for row in c["clips"]:
        e, k = row["embedded_ms"], row["celery_ms"]
        diff = "-" if e is None or k is None else f"{k - e:+.0f}"
        lines.append(f"  {row['clip']:<18}{_ms(e):>10}{_ms(k):>10}{diff:>8}  {'yes' if row['same_text'] else 'NO'}")
    return "\n".join(lines)
