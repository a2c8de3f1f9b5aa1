"""The audio of a session's still-open utterance, kept by the gateway to replay after a failover."""

from collections import deque

import numpy as np

from transcription.engine import SessionConfig


class ReplayBuffer:
    """Client-encoded audio since the last final's end, bounded to what one utterance can span.

    A multichannel session's channels end their utterances at different times: the audio is kept
    from the earliest channel's last final, and in a replay each channel's audio before its own last
    final is silence, so no channel hears again what it already made a final of.
    """

    def __init__(self, config: SessionConfig, *, max_seconds: float) -> None:
        self.frame_bytes = config.bytes_per_frame
        self.rate = config.sample_rate
        self.max_samples = int(max_seconds * self.rate)
        self.frames: deque[tuple[int, bytes]] = deque()  # (first sample index, data)
        self.start = 0  # session sample index where the kept audio begins
        self.end = 0
        # Per channel of a multichannel session: the sample its last stored final ended at.
        self.heard_to = [0] * (config.channels if config.multichannel else 0)

    @property
    def start_s(self) -> float:
        return self.start / self.rate

    def begin_at(self, seconds: float) -> None:
        """The session continues at ``seconds`` (a resume): nothing before it is kept or replayed."""
        self.start = self.end = round(seconds * self.rate)
        self.heard_to = [self.start] * len(self.heard_to)

    def append(self, data: bytes) -> None:
        self.frames.append((self.end, data))
        self.end += len(data) // self.frame_bytes
        self.trim_to_sample(self.end - self.max_samples)

    def trim_to(self, seconds: float, *, channel: int | None = None) -> None:
        """Forget audio before ``seconds`` (the end of a final that is now stored), or, given the
        final's ``channel`` in a multichannel session, before every channel's last final."""
        sample = int(seconds * self.rate)
        if channel is None or not 0 <= channel < len(self.heard_to):
            self.trim_to_sample(sample)
            return
        self.heard_to[channel] = max(self.heard_to[channel], sample)
        self.trim_to_sample(min(self.heard_to))

    def trim_to_sample(self, sample: int) -> None:
        sample = min(sample, self.end)
        while self.frames and self.start < sample:
            first, data = self.frames[0]
            frame_end = first + len(data) // self.frame_bytes
            if frame_end <= sample:
                self.frames.popleft()
                self.start = frame_end
            else:
                self.frames[0] = (sample, data[(sample - first) * self.frame_bytes :])
                self.start = sample
        if not self.frames:
            self.start = max(self.start, sample)

    def chunks(self) -> list[bytes]:
        return [self._silence_heard(first, data) for first, data in self.frames]

    def _silence_heard(self, first: int, data: bytes) -> bytes:
        """``data`` with each channel's samples before its last final's end set to zero (silence)."""
        channels = len(self.heard_to)
        if not any(heard > first for heard in self.heard_to):
            return data
        samples = np.frombuffer(data, dtype=np.uint8).reshape(-1, channels, self.frame_bytes // channels).copy()
        for channel, heard in enumerate(self.heard_to):
            samples[: max(0, heard - first), channel] = 0
        return samples.tobytes()
