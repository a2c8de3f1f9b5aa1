"""Twilio's tracks as one interleaved μ-law stream: the channel layout a multichannel session takes.

Twilio sends each track's 20 ms chunks as messages of their own, each stamped with milliseconds
from the stream's start; the two tracks arrive in no fixed order and one may run ahead. Each track
is laid on its own timeline by its timestamps (a gap is filled with μ-law silence, a chunk that
overlaps what is already there loses the overlap), and samples go out once every track has them.
A track that runs more than ``max_ahead_s`` ahead of another pushes silence into the lagging one,
so neither buffering nor a missing track can grow without bound.
"""

import numpy as np

SILENCE = 0xFF  # μ-law of 0
JITTER_SAMPLES = 80  # 10 ms: a timestamp this close to where the track stands is taken as contiguous


class TrackInterleaver:
    def __init__(self, tracks: tuple[str, ...], *, sample_rate: int, max_ahead_s: float, max_gap_s: float) -> None:
        self.tracks = tracks
        self.rate = sample_rate
        self.max_ahead = round(max_ahead_s * sample_rate)
        self.max_gap = round(max_gap_s * sample_rate)
        self.emitted = 0  # samples per track already sent on
        self.pending = {track: bytearray() for track in tracks}
        self.gaps_capped = 0  # timestamp jumps longer than max_gap_s, filled only up to it

    def add(self, track: str, timestamp_ms: int, payload: bytes) -> bytes:
        """One track's chunk; returns the interleaved samples now complete on every track."""
        pending = self.pending[track]
        at = self.emitted + len(pending)  # where the track stands
        expected = timestamp_ms * self.rate // 1000
        if expected - at > JITTER_SAMPLES:
            gap = expected - at
            if gap > self.max_gap:
                self.gaps_capped += 1
                gap = self.max_gap
            pending.extend(bytes([SILENCE]) * gap)
        elif at - expected > JITTER_SAMPLES:
            payload = payload[at - expected :]  # already heard (a repeat or an overlap)
        pending.extend(payload)
        return self._ready(flush=False)

    def flush(self) -> bytes:
        """The end of the stream: every track padded with silence to the longest, all sent on."""
        return self._ready(flush=True)

    def _ready(self, *, flush: bool) -> bytes:
        lengths = [len(p) for p in self.pending.values()]
        longest = max(lengths)
        count = longest if flush else max(min(lengths), longest - self.max_ahead)
        if count <= 0:
            return b""
        columns = []
        for pending in self.pending.values():
            if len(pending) < count:
                pending.extend(bytes([SILENCE]) * (count - len(pending)))
            columns.append(np.frombuffer(bytes(pending[:count]), dtype=np.uint8))
            del pending[:count]
        self.emitted += count
        if len(columns) == 1:
            return columns[0].tobytes()
        return np.stack(columns, axis=1).tobytes()

    @property
    def buffered_s(self) -> float:
        return max(len(p) for p in self.pending.values()) / self.rate
