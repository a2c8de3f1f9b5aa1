"""WhisperLive as a peer: its messages read as our protocol, and a real-time run on jfk.wav."""

import json

import pytest

from asrclient import StreamResult
from bench.peers.whisperlive import VENV, WhisperLiveServer
from bench.peers.whisperlive.smoke import JFK, print_smoke, smoke
from bench.peers.whisperlive.stream import _Translator

UID = "9f1c"


def segments(*items):
    """A WhisperLive update as its server sends it: (start, end, text, completed) per segment."""
    listed = [{"start": f"{s:.3f}", "end": f"{e:.3f}", "text": t, "completed": c} for s, e, t, c in items]
    return json.dumps({"uid": UID, "segments": listed})


def test_completed_segments_become_finals_once_and_the_open_one_a_partial_of_the_next_number():
    result = StreamResult(url="ws://peer", sample_rate=16000)
    translator = _Translator(UID, result, None)
    # The shape of a real session on jfk.wav: completed segments are resent with every update.
    updates = [
        json.dumps({"uid": UID, "message": "SERVER_READY", "backend": "faster_whisper"}),
        segments((0.0, 1.3, " And so am I", False)),
        segments((0.0, 8.0, " And so my fellow Americans ask not", True), (8.0, 9.7, " ask what", False)),
        segments((0.0, 8.0, " And so my fellow Americans ask not", True), (8.0, 10.0, " ask what you can", False)),
        json.dumps({"uid": "someone-else", "segments": []}),
    ]
    for arrival, raw in enumerate(updates):
        translator.handle(raw, float(arrival))
    translator.close_open_segment(at=10.0)

    kinds = [(m.data["type"], m.data.get("segment"), m.data.get("text")) for m in result.messages]
    assert kinds == [
        ("ready", None, None),
        ("partial", 0, "And so am I"),
        ("final", 0, "And so my fellow Americans ask not"),
        ("partial", 1, "ask what"),
        ("partial", 1, "ask what you can"),
        ("final", 1, "ask what you can"),
    ]
    finals = result.of_type("final")
    assert [(f.data["start"], f.data["end"], f.data["reason"]) for f in finals] == [
        (0.0, 8.0, "completed"),
        (8.0, 10.0, "end_of_audio"),
    ]
    assert [f.arrival for f in finals] == [2.0, 10.0]


def test_a_full_server_is_an_error_not_a_session():
    result = StreamResult(url="ws://peer", sample_rate=16000)
    translator = _Translator(UID, result, None)
    translator.handle(json.dumps({"uid": UID, "status": "WAIT", "message": 9.5}), 0.0)
    assert translator.ready.is_set()
    assert result.problem().startswith("server error server_full")


NOT_INSTALLED = f"no WhisperLive venv at {VENV}; create it with: python -m bench.peers.whisperlive install"


@pytest.mark.slow
@pytest.mark.skipif(not VENV.exists(), reason=NOT_INSTALLED)
def test_jfk_streamed_in_real_time_through_whisperlive_is_recognised(tmp_path):
    outcome = smoke(JFK, server=WhisperLiveServer(log_path=tmp_path / "whisperlive.log"))
    print_smoke(outcome)
    assert outcome["problem"] is None
    assert outcome["wer"] <= 0.1, outcome["finals"]
    assert outcome["final_latency_ms"]["n"] == 1
    for final in outcome["finals"]:
        assert 0.0 <= final["start"] < final["end"] <= outcome["audio_s"], final
