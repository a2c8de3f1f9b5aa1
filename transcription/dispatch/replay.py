"""The audio of a session's still-open utterance, kept by the gateway to replay after a failover."""

from collections import deque

from transcription.engine import SessionConfig


class ReplayBuffer:
    """Client-encoded audio since the last final's end, bounded to what one utterance can span."""

    def __init__(self, config: SessionConfig, *, max_seconds: float) -> None:
        self.frame_bytes = config.bytes_per_frame
        self.rate = config.sample_rate
        self.max_samples = int(max_seconds * self.rate)
        self.frames: deque[tuple[int, bytes]] = deque()  # (first sample index, data)
        self.start = 0  # session sample index where the kept audio begins
        self.end = 0

    @property
    def start_s(self) -> float:
        return self.start / self.rate

    def append(self, data: bytes) -> None:
        self.frames.append((self.end, data))
        self.end += len(data) // self.frame_bytes
        self.trim_to_sample(self.end - self.max_samples)

    def trim_to(self, seconds: float) -> None:
        """Forget audio before ``seconds`` (the end of a final that is now stored)."""
        self.trim_to_sample(int(seconds * self.rate))

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
        return [data for _, data in self.frames]
