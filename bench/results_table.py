"""`python -m bench results`: the latest `bench load` runs of docs/benchmarks/results.json as a table.

``--write`` puts the table between the ``<!-- bench-results:start -->`` and ``<!-- bench-results:end
-->`` markers of README.md and docs/benchmarks.md, so the pages show the data and nothing typed by
hand. Each row is one system's run: capacity and the figures of its highest level within the SLO.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from .results_log import DEFAULT_RESULTS
from .server import ROOT

PAGES = (ROOT / "README.md", ROOT / "docs" / "benchmarks.md")
START, END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"
BLOCK = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)


def _fmt(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _setting(run: dict[str, Any]) -> str:
    """The system and how it ran, in a few words."""
    if run["system"] != "asrplatform":
        return run["system"]
    parts = [run["dispatch"] + (f" ({run['workers']} workers)" if run.get("workers") else "")]
    if run.get("protocol") not in (None, "v1"):
        parts.append(run["protocol"])
    if run.get("multichannel"):
        parts.append("multichannel stereo: capacity in sessions of 2 channels")
    if run.get("final_model"):
        parts.append(f"finals {run.get('final_choice') or 'final_model'} {run['final_model']}")
    if run.get("device") not in (None, "cpu"):
        parts.append(run["device"])
    if run.get("batch_window_ms"):
        parts.append(f"batching {run['batch_window_ms']} ms")
    return "asrplatform " + ", ".join(parts)


def render(runs: list[dict[str, Any]], latest: int) -> str:
    lines = [
        "| date | commit | system | model | 1 stream: CPU s/audio s | capacity "
        "| at capacity: final p95 ms | gap max ms | WER |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for run in runs[-latest:][::-1]:
        if run.get("note"):  # a caveat recorded with the run (e.g. a shared machine): shown, not hidden
            if run["note"] not in notes:
                notes.append(run["note"])
            marker = f" (note {notes.index(run['note']) + 1})"
        else:
            marker = ""
        met = [level for level in run["levels"] if level["slo_ok"]]
        best = max(met, key=lambda level: level["n"]) if met else None
        commit = (run.get("commit") or "-") + ("*" if run.get("tree_differs") else "")
        lines.append(
            f"| {run['date'][:16]} | {commit} | {_setting(run)}{marker} | {run.get('model') or '-'} "
            f"| {_fmt(run['machine'].get('cpu_s_per_audio_s'), '{:.3f}')} | {run['capacity']} "
            f"| {_fmt(best and best['final_ms']['p95'], '{:.0f}')} "
            f"| {_fmt(best and best['partial_gap_ms']['max'], '{:.0f}')} "
            f"| {_fmt(best and best['wer'], '{:.1%}')} |"
        )
    note = (
        f"The latest {min(latest, len(runs))} of {len(runs)} runs in `docs/benchmarks/results.json`, newest first "
        "(`python -m bench results --write`); * marks a run whose tree differed from its commit. "
        "1 stream: the server's CPU seconds per audio second of one real-time stream at the start of the run, "
        "the machine's speed for runs of one configuration (machines of this kind differ about 1.7 times)."
    )
    footnotes = [f"{i}. {text}" for i, text in enumerate(notes, 1)]
    return "\n".join([note, "", *lines, *([""] + footnotes if footnotes else [])])


def write_pages(table: str, pages: tuple[Path, ...] = PAGES) -> list[Path]:
    """Replace each page's marked block with ``table``; pages without the markers are left alone."""
    written = []
    for page in pages:
        text = page.read_text()
        if START not in text:
            continue
        page.write_text(BLOCK.sub(lambda _: f"{START}\n{table}\n{END}", text, count=1))
        written.append(page)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench results", description=__doc__)
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="default docs/benchmarks/results.json")
    p.add_argument("--latest", type=int, default=10, help="rows (default 10)")
    p.add_argument("--write", action="store_true", help="update README.md and docs/benchmarks.md")
    args = p.parse_args(argv)
    if not args.results.exists():
        print(f"error: {args.results} does not exist: run `python -m bench load` first", file=sys.stderr)
        return 1
    table = render(json.loads(args.results.read_text()), args.latest)
    print(table)
    if args.write:
        for page in write_pages(table):
            print(f"updated {page}", file=sys.stderr)
    return 0
