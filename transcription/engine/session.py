"""One live session: audio in, partial and final events out.

Not thread-safe by design: a dispatcher calls one session from one thread at a time, in the order
the audio arrived. Times are tracked as 16 kHz sample indices from the start of the session.
"""

import logging
import time

import numpy as np

from transcription.engine.audio import TARGET_RATE, AudioBuffer, Resampler, decode_pcm
from transcription.engine.config import SessionConfig
from transcription.engine.events import TranscriptEvent
from transcription.engine.models import EngineModels
from transcription.engine.vad import CHUNK_MS, SAMPLES_PER_MS

logger = logging.getLogger(__name__)

VAD_STEP = CHUNK_MS * SAMPLES_PER_MS  # feed the VAD in its own chunk size so cuts land on time
MIN_PARTIAL_AUDIO_S = 0.3  # shorter than this, a partial is guesswork
LOOKBACK_SAMPLES = TARGET_RATE  # audio kept before an utterance for VAD's start look-back


class StreamingSession:
    def __init__(self, config: SessionConfig, models: EngineModels) -> None:
        self.config = config
        self.recognizer = models.recognizer
        self.vad_model = models.vad
        self.resampler = Resampler(config.sample_rate)
        self.buffer = AudioBuffer()
        self.vad = self.vad_model.open_stream(endpointing_ms=config.endpointing_ms)  # type: ignore[attr-defined]
        self.vad_origin = 0  # session sample index where the current VAD stream began
        self.pending = np.zeros(0, dtype=np.float32)  # resampled audio not yet given to the VAD
        self.input_samples = 0  # samples received at the client's own rate (for exact metering)
        self.utterance_start: int | None = None
        self.next_segment = 0
        self.partial_sent = False
        self.last_partial_at = 0.0
        self.last_partial_end = 0

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received, counted at the client's rate, so it is exact."""
        return self.input_samples / self.config.sample_rate

    @property
    def utterance_open(self) -> bool:
        return self.utterance_start is not None

    def accept_audio(self, data: bytes) -> list[TranscriptEvent]:
        """Take raw audio in the session's encoding; return the finals it completed."""
        samples = decode_pcm(data, encoding=self.config.encoding, channels=self.config.channels)
        self.input_samples += len(samples)
        return self._accept_samples(self.resampler.process(samples))

    def finalize(self, reason: str) -> list[TranscriptEvent]:
        """End the open utterance now (client request, stop or disconnect)."""
        events = []
        if reason in ("stop", "disconnect"):
            events += self._accept_samples(self.resampler.process(np.zeros(0, dtype=np.float32), last=True))
        events += self._run_vad(self.pending, is_final=True, reason=reason)
        self.pending = np.zeros(0, dtype=np.float32)
        if self.utterance_start is not None:
            events += self._final(self.buffer.end, reason)
        self.vad_origin = self.buffer.end
        self.utterance_start = None
        return events

    def partial_due(self, now: float) -> bool:
        if not (self.config.interim_results and self.utterance_start is not None):
            return False
        if now - self.last_partial_at < self.config.partial_interval_s:
            return False
        new_audio = self.buffer.end - max(self.last_partial_end, self.utterance_start)
        length = self.buffer.end - self.utterance_start
        return new_audio > 0 and length >= MIN_PARTIAL_AUDIO_S * TARGET_RATE

    def seconds_until_partial(self, now: float) -> float | None:
        if not (self.config.interim_results and self.utterance_start is not None):
            return None
        return max(0.0, self.last_partial_at + self.config.partial_interval_s - now)

    def decode_partial(self, now: float | None = None) -> TranscriptEvent | None:
        """Re-decode the open utterance so far; None when there is nothing new to say."""
        if self.utterance_start is None:
            return None
        start, end = self.utterance_start, self.buffer.end
        text = self.recognizer.transcribe(self.buffer.slice(start, end), language=self.config.language, beam_size=1)  # type: ignore[attr-defined]
        self.last_partial_at = time.monotonic() if now is None else now
        self.last_partial_end = end
        if not text:
            return None
        self.partial_sent = True
        return TranscriptEvent(self.next_segment, text, start / TARGET_RATE, end / TARGET_RATE, is_final=False)

    def _accept_samples(self, samples: np.ndarray) -> list[TranscriptEvent]:
        self.buffer.append(samples)
        self.pending = np.concatenate([self.pending, samples]) if len(self.pending) else samples
        events: list[TranscriptEvent] = []
        while len(self.pending) >= VAD_STEP:
            step, self.pending = self.pending[:VAD_STEP], self.pending[VAD_STEP:]
            events += self._run_vad(step)
        self._trim_buffer()
        return events

    def _run_vad(self, samples: np.ndarray, *, is_final: bool = False, reason: str = "vad") -> list[TranscriptEvent]:
        """Feed the VAD; an end it reports closes the utterance (with ``reason``: a flush ends it for the client)."""
        events: list[TranscriptEvent] = []
        for start_ms, end_ms in self.vad.feed(samples, is_final=is_final):
            if start_ms >= 0 and self.utterance_start is None:
                self.utterance_start = self.vad_origin + start_ms * SAMPLES_PER_MS
            if end_ms >= 0 and self.utterance_start is not None:
                events += self._final(min(self.vad_origin + end_ms * SAMPLES_PER_MS, self.buffer.end), reason)
        events += self._cut_if_too_long(self.buffer.end - len(self.pending))
        return events

    def _cut_if_too_long(self, position: int) -> list[TranscriptEvent]:
        """Cut an utterance at max_utterance_s; VAD still hears speech, so the next one starts here."""
        limit = int(self.config.max_utterance_s * TARGET_RATE)
        if self.utterance_start is None or position - self.utterance_start < limit:
            return []
        cut = self.utterance_start + limit
        events = self._final(cut, "max_length")
        self.utterance_start = cut
        return events

    def _final(self, end: int, reason: str) -> list[TranscriptEvent]:
        start = self.utterance_start
        assert start is not None
        end = max(end, start)
        self.utterance_start = None
        text = self.recognizer.transcribe(self.buffer.slice(start, end), language=self.config.language)  # type: ignore[attr-defined]
        had_partial, self.partial_sent = self.partial_sent, False
        self.last_partial_end = end
        if not text and not had_partial:
            # Nothing was said and nothing was promised: no segment number is used.
            return []
        event = TranscriptEvent(
            self.next_segment, text, start / TARGET_RATE, end / TARGET_RATE, is_final=True, reason=reason
        )
        self.next_segment += 1
        return [event]

    def _trim_buffer(self) -> None:
        keep_from = self.utterance_start if self.utterance_start is not None else self.buffer.end
        self.buffer.discard_before(keep_from - LOOKBACK_SAMPLES)
