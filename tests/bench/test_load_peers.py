"""`bench load --peer`: several peers in one run, each measured alike, shown and filed side by side."""

import json

import pytest

from bench import load
from bench.loadreport import render_side_by_side
from bench.peers.whisperlive import VENV as WHISPERLIVE_VENV
from bench.peers.whisperlivekit import VENV as WHISPERLIVEKIT_VENV


def test_peers_are_listed_with_commas_or_by_repeating_the_flag_and_unknown_ones_are_refused(capsys):
    parser = load.build_parser()
    assert parser.parse_args([]).peer == []
    assert parser.parse_args(["--peer", "whisperlive,whisperlivekit"]).peer == ["whisperlive", "whisperlivekit"]
    assert parser.parse_args(["--peer", "whisperlivekit", "--peer", "whisperlive"]).peer == [
        "whisperlivekit",
        "whisperlive",
    ]
    with pytest.raises(SystemExit):
        parser.parse_args(["--peer", "whisperlive,vosk"])
    assert "peers are whisperlive, whisperlivekit" in capsys.readouterr().err


def test_a_stereo_run_refuses_peers_rather_than_streaming_them_two_channels(capsys):
    assert load.main(["--multichannel", "--peer", "whisperlivekit", "--no-results"]) == 2
    assert "not to a --peer" in capsys.readouterr().err


def run(name, capacity, p95):
    level = {
        "n": 2,
        "final_latency_ms": {"p50": p95 / 2, "p95": p95, "max": p95 + 100},
        "partial_gap_in_speech_ms": {"max": 900.0},
        "wer": 0.1,
        "server": {"cpu_pct": 80.0},
        "errors": 0,
        "slo_ok": p95 <= 1300,
    }
    return {"target": {"name": name}, "capacity": capacity, "levels": [level]}


def test_the_side_by_side_table_has_a_row_for_every_system_at_every_level():
    ours = run("asrplatform embedded", 6, 900.0)
    peers = [run("WhisperLive 0.10.0 (faster_whisper backend)", 2, 1200.0), run("WhisperLiveKit 0.2.26", 1, 2500.0)]
    table = render_side_by_side(ours, peers).splitlines()
    assert "asrplatform embedded 6, WhisperLive 0.10.0 (faster_whisper backend) 2, WhisperLiveKit 0.2.26 1" in table[0]
    rows = [line.split() for line in table[2:]]
    assert [(row[0], row[1], row[3], row[-1]) for row in rows] == [
        ("2", "asrplatform", "900", "ok"),
        ("2", "whisperlive", "1200", "ok"),
        ("2", "whisperlivekit", "2500", "FAIL"),
    ]


BOTH_INSTALLED = WHISPERLIVE_VENV.exists() and WHISPERLIVEKIT_VENV.exists()


@pytest.mark.slow
@pytest.mark.skipif(not BOTH_INSTALLED, reason="install both peers: python -m bench.peers.PEER install")
def test_one_run_measures_ours_and_both_peers_and_files_each_under_its_system(tmp_path, eval_dir, capsys):
    output, results = tmp_path / "load.json", tmp_path / "results.json"
    argv = ["--levels", "1", "--session-s", "12", "--ramp-s", "0", "--no-offline", "--output", str(output)]
    argv += ["--results", str(results), "--eval-dir", str(eval_dir / "real"), "--peer", "whisperlive,whisperlivekit"]
    argv += ["--slo-final-p95-ms", "5000", "--slo-partial-gap-ms", "10000"]  # a busy shared machine still passes

    assert load.main(argv) == 0

    figures = json.loads(output.read_text())
    assert [peer["target"]["name"].split()[0] for peer in figures["peers"]] == ["WhisperLive", "WhisperLiveKit"]
    for system in (figures, *figures["peers"]):
        (level,) = system["levels"]
        assert level["errors"] == 0, level["first_errors"]
        assert level["final_latency_ms"]["n"] > 0 and level["wer"] < 0.3, system["target"]
        assert level["server"]["cpu_s"] and level["server"]["peak_rss_mib"], system["target"]
    assert [run["system"] for run in json.loads(results.read_text())] == [
        "asrplatform",
        "whisperlive",
        "whisperlivekit",
    ]
    table = capsys.readouterr().out.split("side by side")[1].splitlines()
    assert [line.split()[1] for line in table[2:]] == ["asrplatform", "whisperlive", "whisperlivekit"]
