"""The load sweep: its SLO decision, its partial-gap definition, its sessions, and a live run."""

import argparse
import json
import math

import numpy as np
import pytest

from asrclient import ReceivedMessage, SentFrame, StreamResult
from bench import load, memory, results_log, results_table
from bench.evaluation import ClipSpan, ConcatenatedSession, load_manifest
from bench.loadstats import Slo, capacity, slo_failures, speech_gaps, speech_regions
from bench.plot import broken_figures
from bench.targets import Target


def level(n, *, p95=600.0, gap_max=900.0, errors=0, wer=0.1):
    """Per-level figures as `bench.load.run_level` reports them, reduced to what is judged and printed."""
    return {
        "n": n,
        "final_latency_ms": {"p50": p95 / 2, "p95": p95, "max": p95 + 100},
        "partial_gap_in_speech_ms": {"p95": gap_max / 2, "max": gap_max},
        "first_partial_ms": {"p50": 400.0},
        "wer": wer,
        "errors": errors,
        "first_errors": [f"client 0: boom {i}" for i in range(errors)],
        "server": {"cpu_pct": 50.0, "cpu_pct_of_machine": 25.0, "peak_rss_mib": {"gateway": 700.0}},
        "bench_client": {"cpu_pct": 1.0},
    }


def judged(figures, slo=Slo()):
    failures = slo_failures(figures, slo)
    return {**figures, "slo_failures": failures, "slo_ok": not failures}


def test_a_level_within_every_default_slo_passes():
    assert slo_failures(level(4, p95=1300.0, gap_max=1500.0), Slo()) == []


@pytest.mark.parametrize(
    ("figures", "broken"),
    [
        (level(4, p95=1301.0), "final latency p95"),
        (level(4, gap_max=1501.0), "partial gap in speech"),
        (level(4, errors=1), "1 errors"),
    ],
)
def test_each_default_slo_criterion_breaks_a_level_on_its_own(figures, broken):
    failures = slo_failures(figures, Slo())
    assert len(failures) == 1 and failures[0].startswith(broken)


def test_a_level_without_any_final_fails_rather_than_passing_unjudged():
    figures = level(8)
    figures["final_latency_ms"] = {"p50": None, "p95": None, "max": None}
    assert slo_failures(figures, Slo())[0].startswith("final latency p95 None")


def test_wer_is_judged_only_when_asked_for():
    assert slo_failures(level(2, wer=0.5), Slo()) == []
    assert slo_failures(level(2, wer=0.5), Slo(max_wer=0.2)) == ["WER 0.5 > 0.2"]


def test_capacity_is_the_last_passing_level_before_the_first_failure():
    levels = [judged(level(1)), judged(level(2)), judged(level(4, p95=2000.0)), judged(level(6))]
    assert capacity(levels) == 2  # N=6 passing after N=4 failed (with --keep-going) does not count
    assert capacity([judged(level(1, errors=1))]) == 0
    assert capacity([judged(level(1)), judged(level(2))]) == 2


def test_the_plot_marks_the_figure_that_broke_the_slo_on_its_own_panel():
    slo = Slo(max_wer=0.2).as_dict()
    assert broken_figures(level(10, gap_max=1703.0), slo) == [("gap", 1703.0)]
    assert broken_figures(level(10, p95=1400.0, wer=0.25), slo) == [("final", 1400.0), ("wer", 25.0)]
    assert broken_figures(level(10, errors=2), slo) == []  # shaded, but no figure to cross


@pytest.fixture
def entries(eval_dir):
    return load_manifest(eval_dir / "real")


def sweep_args(levels, *, keep_going=False):
    return argparse.Namespace(
        levels=levels,
        session_s=5.0,
        gap_s=1.0,
        ramp_s=1.0,
        seed=1,
        chunk_ms=100,
        endpointing_ms=800,
        drain_timeout_s=30.0,
        settle_timeout_s=1.0,
        keep_going=keep_going,
        no_offline=True,
    )


@pytest.mark.parametrize(("keep_going", "run"), [(False, [1, 2, 4]), (True, [1, 2, 4, 8])])
def test_sweep_stops_at_the_first_level_that_breaks_the_slo(monkeypatch, entries, keep_going, run):
    """Level figures stand in for a server pushed past its capacity, which this shared box cannot do on cue."""
    measured = {1: level(1), 2: level(2, p95=1100.0), 4: level(4, p95=1800.0), 8: level(8)}
    ran = []

    def fake_level(target, plans, stream_options, offline=None):
        ran.append(len(plans))
        return measured[len(plans)]

    monkeypatch.setattr(load, "warm_up", lambda *a, **k: None)
    monkeypatch.setattr(load, "settle", lambda *a, **k: {"settle_s": 0.0, "quiet": True})
    monkeypatch.setattr(load, "run_level", fake_level)
    target = Target("fake", "ws://127.0.0.1:9/ws/v1/transcribe", stream=None)

    outcome = load.sweep(target, entries, sweep_args([1, 2, 4, 8], keep_going=keep_going), Slo())

    assert ran == run
    assert [lv["slo_ok"] for lv in outcome["levels"]] == [n != 4 for n in run]
    assert outcome["capacity"] == 2 and outcome["first_failing_n"] == 4


def test_each_client_gets_its_own_order_of_the_clips_and_keeps_it_at_every_level(entries):
    four = load.client_plans(entries, 4, session_s=20.0, gap_s=1.0, ramp_s=3.0, seed=7)
    two = load.client_plans(entries, 2, session_s=20.0, gap_s=1.0, ramp_s=3.0, seed=7)
    orders = [[c.name for c in plan.session.clips] for plan in four]
    assert len({tuple(order) for order in orders}) == 4
    assert orders[:2] == [[c.name for c in plan.session.clips] for plan in two]
    assert [plan.offset_s for plan in four] == [0.0, 0.75, 1.5, 2.25]
    for plan in four:
        assert plan.session.duration_s >= 20.0
        assert plan.audio.duration_s == pytest.approx(plan.session.duration_s)
        gaps = [b.start_s - a.end_s for a, b in zip(plan.session.clips, plan.session.clips[1:], strict=False)]
        assert gaps and all(g == pytest.approx(1.0) for g in gaps)


def clip_with_two_phrases():
    """A 3 s clip: tones at 0.3-0.9 s and 2.1-2.7 s (a 1.2 s pause between), silence around them."""
    rate = 16000
    audio = np.zeros(3 * rate, dtype=np.float32)
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(int(0.6 * rate)) / rate).astype(np.float32)
    audio[int(0.3 * rate) : int(0.9 * rate)] = tone
    audio[int(2.1 * rate) : int(2.7 * rate)] = tone
    return ConcatenatedSession(audio, rate, [ClipSpan("a.wav", "ten of clubs", 0, 3 * rate, rate)])


def test_speech_regions_are_the_loud_stretches_of_a_clip_with_pauses_between_them():
    session = clip_with_two_phrases()
    assert speech_regions(session.audio, 16000) == [(4800, 14400), (33600, 43200)]
    assert speech_regions(np.zeros(16000, dtype=np.float32), 16000) == []


def test_partial_gaps_count_only_waits_during_speech_for_news_about_that_speech():
    """Frames of 100 ms sent from t=100: the phrases are sent 100.3-100.8 and 102.1-102.6."""
    session = clip_with_two_phrases()
    stream = StreamResult(url="ws://x", sample_rate=16000, realtime=True)
    for i in range(30):
        sent = 100.0 + i * 0.1
        stream.frames.append(SentFrame(i, sent, sent, i * 1600, (i + 1) * 1600, (i + 1) / 10))

    def message(arrival, kind, segment, start, end, text="ten"):
        data = {"type": kind, "segment": segment, "text": text, "start": start, "end": end}
        stream.messages.append(ReceivedMessage(arrival, data))

    message(100.55, "partial", 0, 0.3, 0.6)
    message(102.2, "final", 0, 0.3, 1.1, "ten of")  # arrives during the second phrase, but is not about it
    message(102.45, "partial", 1, 2.0, 2.5, "clubs")

    gaps = speech_gaps(stream, session)

    assert [round(g.seconds, 3) for g in gaps] == [0.25, 0.25, 0.35, 0.15]  # the pause is nobody's wait
    assert [g.at_s for g in gaps] == [0.3, 0.55, 2.1, 2.45]


def test_a_phrase_without_any_news_is_one_wait_as_long_as_the_phrase():
    session = clip_with_two_phrases()
    stream = StreamResult(url="ws://x", sample_rate=16000, realtime=True)
    for i in range(30):
        stream.frames.append(SentFrame(i, 100.0 + i * 0.1, 100.0 + i * 0.1, i * 1600, (i + 1) * 1600, (i + 1) / 10))

    assert [round(g.seconds, 3) for g in speech_gaps(stream, session)] == [0.5, 0.5]


@pytest.mark.slow
def test_sweep_against_the_embedded_server_measures_both_levels(tmp_path, eval_dir, capsys):
    output, results = tmp_path / "load.json", tmp_path / "results.json"
    results.write_text(json.dumps([{"system": "an earlier run"}]))
    # SLO loosened so that a busy shared machine still runs both levels; the figures are checked below.
    argv = ["--levels", "1,2", "--session-s", "8", "--ramp-s", "2", "--output", str(output), "--results", str(results)]
    argv += ["--speed-probe-s", "5"]
    argv += ["--eval-dir", str(eval_dir / "real"), "--slo-final-p95-ms", "5000", "--slo-partial-gap-ms", "5000"]

    assert load.main(argv) == 0

    figures = json.loads(output.read_text())
    assert [lv["n"] for lv in figures["levels"]] == [1, 2]
    assert figures["warmup_problem"] is None
    for lv in figures["levels"]:
        assert lv["errors"] == 0, lv["first_errors"]
        assert lv["slo_ok"], lv["slo_failures"]
        assert len(lv["sessions"]) == lv["n"] == lv["clients"]
        assert lv["counts"]["finals"] >= lv["counts"]["clips"] - lv["counts"]["clips_without_final"] > 0
        assert lv["final_latency_ms"]["n"] > 0 and 0 < lv["final_latency_ms"]["p95"] < 5000
        assert lv["partial_gap_in_speech_ms"]["n"] > 0 and lv["first_partial_ms"]["n"] > 0
        assert lv["wer"] < 0.3
        assert abs(lv["wer"] - lv["offline_wer"]) <= 0.05  # the same model offline, on the same clips
        assert lv["server"]["cpu_s"]["gateway"] > 0 and not math.isnan(lv["server"]["cpu_pct"])
        assert lv["server"]["peak_rss_mib"]["gateway"] > 100
    assert figures["capacity"] == 2 and figures["first_failing_n"] is None
    assert output.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert "capacity: 2 concurrent streams" in capsys.readouterr().out
    earlier, run = json.loads(results.read_text())  # appended to what was there
    assert earlier == {"system": "an earlier run"}
    assert run["system"] == "asrplatform" and run["dispatch"] == "local" and run["model"] == "tiny.en"
    assert run["capacity"] == 2 and [lv["n"] for lv in run["levels"]] == [1, 2] and len(run["commit"]) == 12
    assert 0.01 < run["machine"]["cpu_s_per_audio_s"] < 2 and run["slo"]["final_p95_ms"] == 5000
    assert run["levels"][1]["final_ms"]["p95"] == figures["levels"][1]["final_latency_ms"]["p95"]


def test_a_results_file_that_is_not_a_list_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"capacity": 6}')
    with pytest.raises(ValueError, match="not hold a JSON list"):
        results_log.append(path, [{"capacity": 8}])
    assert json.loads(path.read_text()) == {"capacity": 6}
    new = tmp_path / "new" / "results.json"
    results_log.append(new, [{"capacity": 8}])
    results_log.append(new, [{"capacity": 10}])
    assert json.loads(new.read_text()) == [{"capacity": 8}, {"capacity": 10}]


@pytest.mark.parametrize(
    ("name", "system"),
    [("asrplatform embedded", "asrplatform"), ("asrplatform celery (2 workers), deepgram protocol", "asrplatform"),
     ("WhisperLive 0.10.0 (faster_whisper backend)", "whisperlive"), ("WhisperLiveKit 0.2", "whisperlivekit")],
)  # fmt: skip
def test_a_run_is_filed_under_its_system(name, system):
    assert results_log.system_of(name) == system


@pytest.mark.slow
def test_memory_run_samples_rss_before_every_k_sessions_and_after(tmp_path, eval_dir):
    output = tmp_path / "memory.json"
    argv = ["--sessions", "6", "--every", "3", "--warmup-sessions", "2", "--output", str(output)]

    assert memory.main([*argv, "--eval-dir", str(eval_dir / "real")]) == 0

    figures = json.loads(output.read_text())
    assert [row["sessions"] for row in figures["samples"]] == [0, 3, 6]
    assert all(row["rss_mib"]["gateway"] > 100 for row in figures["samples"])
    assert figures["errors"] == 0 and figures["first_errors"] == []
    assert set(figures["growth_mib"]) == {"gateway"}
    assert figures["warmup"]["sessions"] == 2 and set(figures["warmup"]["growth_mib"]) == {"gateway"}


def _run(system="asrplatform", capacity=6, **extra):
    levels = [
        {
            "n": n,
            "slo_ok": n <= capacity,
            "final_ms": {"p95": 900.0 + n},
            "partial_gap_ms": {"max": 1400.0},
            "wer": 0.05,
        }
        for n in (4, 6, 8)
    ]
    return {"date": "2026-12-01T16:00:00+0000", "commit": "abc123def456", "system": system, "dispatch": "local",
            "model": "tiny.en", "machine": {"cpu_s_per_audio_s": 0.226}, "levels": levels, "capacity": capacity,
            **extra}  # fmt: skip


def test_the_results_table_shows_the_latest_runs_newest_first_between_the_pages_markers(tmp_path):
    shared = "machine shared with a test run"
    runs = [_run(capacity=4), _run(capacity=6, final_model="base", final_choice="confident"), _run("whisperlive", 2)]
    runs[2]["note"] = shared
    table = results_table.render(runs, latest=2)
    rows = [line for line in table.splitlines() if line.startswith("| 2026")]
    assert len(rows) == 2 and "| whisperlive (note 1) |" in rows[0] and "finals confident base |" in rows[1]
    assert table.endswith(f"\n\n1. {shared}")
    assert "multichannel stereo: capacity in sessions" in results_table.render([_run(multichannel=True)], latest=1)
    assert "| 6 | 906 | 1400 | 5.0% |" in rows[1]  # capacity, then the figures at N=6
    page = tmp_path / "page.md"
    page.write_text(f"before\n{results_table.START}\nold table\n{results_table.END}\nafter\n")
    untouched = tmp_path / "other.md"
    untouched.write_text("no markers\n")
    assert results_table.write_pages(table, (page, untouched)) == [page]
    assert page.read_text() == f"before\n{results_table.START}\n{table}\n{results_table.END}\nafter\n"
    assert untouched.read_text() == "no markers\n"
