"""Twilio's two tracks as one interleaved stream (protocols/twilio_tracks.py): gaps filled by
timestamp, overlaps dropped, and neither track buffered past its bound."""

import numpy as np

from transcription.gateway.protocols.twilio_tracks import SILENCE, TrackInterleaver

CHUNK = 160


def chunk(value: int) -> bytes:
    return bytes([value]) * CHUNK


def columns(data: bytes) -> tuple[bytes, bytes]:
    both = np.frombuffer(data, dtype=np.uint8).reshape(-1, 2)
    return both[:, 0].tobytes(), both[:, 1].tobytes()


def interleaver(max_ahead_s: float = 2.0, max_gap_s: float = 10.0) -> TrackInterleaver:
    return TrackInterleaver(("inbound", "outbound"), sample_rate=8000, max_ahead_s=max_ahead_s, max_gap_s=max_gap_s)


def test_samples_go_out_once_both_tracks_have_them_and_a_gap_is_silence_by_timestamp():
    tracks = interleaver()
    assert tracks.add("inbound", 0, chunk(1)) == b""
    out = tracks.add("outbound", 40, chunk(2))  # the outbound track starts 40 ms in
    inbound, outbound = columns(out)
    assert inbound == chunk(1) and outbound == bytes([SILENCE]) * CHUNK
    inbound, outbound = columns(tracks.add("inbound", 20, chunk(3)) + tracks.add("inbound", 40, chunk(4)))
    assert inbound == chunk(3) + chunk(4) and outbound == bytes([SILENCE]) * CHUNK + chunk(2)


def test_a_repeated_chunk_is_dropped_and_jitter_is_taken_as_contiguous():
    tracks = TrackInterleaver(("inbound",), sample_rate=8000, max_ahead_s=2.0, max_gap_s=10.0)
    assert tracks.add("inbound", 0, chunk(1)) == chunk(1)
    assert tracks.add("inbound", 0, chunk(1)) == b""  # the same chunk again
    assert tracks.add("inbound", 25, chunk(2)) == chunk(2)  # 5 ms late: jitter
    assert tracks.add("inbound", 100, chunk(3)) == bytes([SILENCE]) * 3 * CHUNK + chunk(3)


def test_a_track_running_ahead_is_bounded_and_a_long_jump_is_filled_only_to_the_cap():
    tracks = interleaver(max_ahead_s=0.1)
    out = b"".join(tracks.add("inbound", i * 20, chunk(7)) for i in range(50))  # outbound never comes
    assert tracks.buffered_s <= 0.1 + CHUNK / 8000
    assert len(out) // 2 >= 50 * CHUNK - 800 - CHUNK
    single = TrackInterleaver(("inbound",), sample_rate=8000, max_ahead_s=2.0, max_gap_s=1.0)
    assert len(single.add("inbound", 3_600_000, chunk(1))) == 8000 + CHUNK and single.gaps_capped == 1


def test_flush_pads_every_track_to_the_longest():
    tracks = interleaver()
    tracks.add("inbound", 0, chunk(1) * 2)
    inbound, outbound = columns(tracks.flush())
    assert inbound == chunk(1) * 2 and outbound == bytes([SILENCE]) * 2 * CHUNK
