"""`python -m bench accuracy` on one clip per condition with tiny.en: the table keeps its shape and its sense."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main
from bench.accuracy.plan import DEFAULT_CONDITIONS, System, parse_condition, parse_pairing
from tests.support.paths import EVAL_DIR

ENGLISH = [c for c in DEFAULT_CONDITIONS if parse_condition(c).language == "en"]


@pytest.mark.slow
def test_accuracy_table_has_a_row_per_english_condition_and_noise_does_not_help(tmp_path, capsys, engine_models):
    output = tmp_path / "accuracy.json"
    argv = ["accuracy", "--quick", "--limit", "1", "--models", "tiny.en", "--eval-dir", str(EVAL_DIR)]
    assert main([*argv, "--variants-dir", str(tmp_path / "variants"), "--output", str(output)]) == 0

    figures = json.loads(output.read_text())
    rows = {row["condition"]: row for row in figures["rows"]}
    assert list(rows) == ENGLISH  # tiny.en is English-only: no Mandarin row
    for row in rows.values():
        assert row["system"] == "tiny.en" and len(row["clips"]) == 1 and row["audio_s"] > 0
        assert row["metric"] == "WER"
        for side in (row["streamed"], row["offline"]):
            assert 0 <= side["error_rate"] <= 1.5 and side["rtf"] > 0 and len(side["hypotheses"]) == 1
    clean, noisy = rows["clean"], [rows[n] for n in ("white-20db", "white-10db", "babble-20db", "music-20db")]
    assert clean["offline"]["error_rate"] < 0.1  # jfk.wav: a clip tiny.en knows well
    # One clip of 22 words: a word is 4.5 points, and noise may flip one or two either way.
    words = len(clean["references"][0].split())
    for side in ("streamed", "offline"):
        for row in noisy:
            assert row["clips"] == clean["clips"]
            assert row[side]["error_rate"] >= clean[side]["error_rate"] - max(0.05, 2 / words) - 1e-9, (row, side)
        mean = sum(row[side]["error_rate"] for row in noisy) / len(noisy)
        assert mean >= clean[side]["error_rate"] - 0.05, side
    variants = {v.name: v for v in (tmp_path / "variants").iterdir()}
    assert sorted(variants) == ["real-babble-20db-s0", "real-music-20db-s0", "real-white-10db-s0", "real-white-20db-s0"]
    assert all((v / "jfk.wav").read_bytes() != (EVAL_DIR / "real" / "jfk.wav").read_bytes() for v in variants.values())

    table = capsys.readouterr().out
    assert table.count("| tiny.en |") == len(ENGLISH)
    assert "real/ babble-20db" in table and "long/" in table
    assert figures["code"]["commit"]


@pytest.mark.slow
def test_a_pairing_is_one_more_row_scored_against_its_final_model(tmp_path, engine_models, whisper_base):
    output = tmp_path / "accuracy.json"
    argv = ["accuracy", "--quick", "--limit", "1", "--models", "", "--pairings", "tiny.en+base", "--conditions"]
    assert main([*argv, "clean,zh", "--output", str(output)]) == 0
    rows = json.loads(output.read_text())["rows"]
    assert [(r["condition"], r["system"]) for r in rows] == [("clean", "tiny.en+base")]  # tiny.en has no zh
    assert rows[0]["offline"]["error_rate"] < 0.1 and rows[0]["streamed"]["error_rate"] < 0.2


def test_a_pairing_names_how_its_finals_are_chosen():
    assert parse_pairing("tiny.en+base") == System("tiny.en", "base", "final_model")
    confident = parse_pairing("tiny.en|base")
    assert confident == System("tiny.en", "base", "confident") and confident.name == "tiny.en|base"
    for bad in ("tiny.en", "+base", "tiny.en|"):
        with pytest.raises(ValueError, match="PARTIAL"):
            parse_pairing(bad)


@pytest.mark.parametrize(
    ("name", "label"),
    [("clean", "real/"), ("white-20db", "real/ white-20db"), ("white:10", "real/ white-10db"),
     ("level-6dbfs", "real/ level-6dbfs"), ("zh", "zh/ + zh-read/"), ("long", "long/")],
)  # fmt: skip
def test_condition_names_read_back_as_they_are_printed(name, label):
    condition = parse_condition(name)
    assert condition.label == label
    assert parse_condition(condition.name) == condition
