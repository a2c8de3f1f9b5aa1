"""Final latency: from the arrival of the audio that ends an utterance to its final being sent."""

import time
from collections import deque

from transcription import metrics


class FinalLatency:
    def __init__(self) -> None:
        # (session time at the end of a received frame, when it arrived)
        self.arrivals: deque[tuple[float, float]] = deque(maxlen=2000)

    def audio_received(self, session_time_s: float) -> None:
        self.arrivals.append((session_time_s, time.monotonic()))

    def final_sent(self, end_s: float) -> None:
        while self.arrivals and self.arrivals[0][0] < end_s - 1e-3:
            self.arrivals.popleft()
        if self.arrivals:
            metrics.observe_final_latency(time.monotonic() - self.arrivals[0][1])
