"""WhisperLiveKit as a peer: its state updates read as our protocol, and a real-time run on jfk.wav."""

import json

import pytest

from asrclient import StreamResult
from bench.peers.whisperlivekit import VENV, WhisperLiveKitServer
from bench.peers.whisperlivekit.smoke import JFK, print_smoke, smoke
from bench.peers.whisperlivekit.stream import _Translator, seconds


def state(committed, buffer="", *, start="0:00:00.00", end="0:00:00.00", silence_after=None):
    """A WhisperLiveKit update in its default "full" mode: committed lines, then the unconfirmed buffer."""
    lines = [{"speaker": 1, "text": committed, "start": start, "end": end}] if committed else []
    if silence_after:  # a long pause's silence line, then the next line
        text, line_start, line_end = silence_after
        lines += [
            {"speaker": -2, "text": None, "start": end, "end": line_start},
            {"speaker": 1, "text": text, "start": line_start, "end": line_end},
        ]
    update = {"status": "active_transcription", "lines": lines, "buffer_transcription": buffer}
    return json.dumps(update | {"remaining_time_transcription": 0.4, "remaining_time_diarization": 0})


def test_timestamps_are_read_from_its_clock_format():
    assert seconds("0:00:07.66") == pytest.approx(7.66)
    assert seconds("1:02:03.50") == pytest.approx(3723.5)


def test_newly_committed_text_is_a_final_and_the_buffer_a_partial_of_the_next_number():
    result = StreamResult(url="ws://peer/asr", sample_rate=16000)
    translator = _Translator("s1", result, None)
    # The shape of a real session on jfk.wav; WhisperLiveKit resends its state every 50 ms.
    updates = [
        json.dumps({"type": "config", "useAudioWorklet": True, "mode": "full"}),
        state("", " And so..."),
        state(" And", " so my fellow mirror-", end="0:00:00.76"),
        state(" And", " so my fellow mirror-", end="0:00:00.76"),  # only the lag changed
        state(" And so my fellow Americans.", "", end="0:00:02.08"),
        state(" And so my fellow Americans.", " Ask.", end="0:00:02.08"),
        state(
            " And so my fellow Americans.",
            "",
            end="0:00:02.08",
            silence_after=(" Ask not.", "0:00:08.00", "0:00:09.10"),
        ),
        json.dumps({"type": "ready_to_stop"}),
    ]
    for arrival, raw in enumerate(updates):
        translator.handle(raw, float(arrival))

    kinds = [(m.data["type"], m.data.get("segment"), m.data.get("text")) for m in result.messages]
    assert kinds == [
        ("ready", None, None),
        ("partial", 0, "And so..."),
        ("final", 0, "And"),
        ("partial", 1, "so my fellow mirror-"),
        ("final", 1, "so my fellow Americans."),
        ("partial", 2, "Ask."),
        ("final", 2, "Ask not."),
    ]
    finals = result.of_type("final")
    assert [(f.data["start"], f.data["end"], f.data["reason"]) for f in finals] == [
        (0.0, 0.76, "committed"),
        (0.76, 2.08, "committed"),
        (8.0, 9.1, "committed"),  # a new line starts where that line does
    ]
    assert [f.arrival for f in finals] == [2.0, 4.0, 6.0]
    assert translator.stopped.is_set()


def test_a_tail_never_confirmed_is_the_last_final_at_ready_to_stop():
    result = StreamResult(url="ws://peer/asr", sample_rate=16000)
    translator = _Translator("s1", result, None)
    translator.audio_sent_s = 3.0
    translator.handle(state(" Ask not", " what your", end="0:00:02.00"), 1.0)
    translator.handle(json.dumps({"type": "ready_to_stop"}), 2.0)
    translator.close_open_segment(at=2.0)
    final = result.of_type("final")[-1].data
    assert (final["segment"], final["text"], final["start"], final["end"], final["reason"]) == (
        1, "what your", 2.0, 3.0, "end_of_audio"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "config", "useAudioWorklet": False, "mode": "full"}, "whisperlivekit_not_pcm"),
        ({"type": "error", "error": "Unsupported language 'xx'"}, "whisperlivekit_error"),
        ({"status": "error", "error": "FFmpeg error: gone", "lines": []}, "whisperlivekit_error"),
    ],
)
def test_a_server_that_cannot_take_our_audio_or_fails_is_an_error_not_a_session(message, code):
    result = StreamResult(url="ws://peer/asr", sample_rate=16000)
    translator = _Translator("s1", result, None)
    translator.handle(json.dumps(message), 0.0)
    assert translator.ready.is_set()
    assert result.problem().startswith(f"server error {code}")


NOT_INSTALLED = f"no WhisperLiveKit venv at {VENV}; create it with: python -m bench.peers.whisperlivekit install"


@pytest.mark.slow
@pytest.mark.skipif(not VENV.exists(), reason=NOT_INSTALLED)
def test_jfk_streamed_in_real_time_through_whisperlivekit_is_recognised(tmp_path):
    outcome = smoke(JFK, server=WhisperLiveKitServer(log_path=tmp_path / "whisperlivekit.log"))
    print_smoke(outcome)
    assert outcome["problem"] is None
    assert outcome["wer"] <= 0.1, outcome["finals"]
    assert outcome["final_latency_ms"]["n"] == 1
    assert outcome["partials"] >= 1
    for final in outcome["finals"]:
        assert 0.0 <= final["start"] <= final["end"] <= outcome["audio_s"], final
