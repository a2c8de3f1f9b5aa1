"""One live session: audio in, partial and final events out.

Not thread-safe by design: a dispatcher calls one session from one thread at a time, in the order
the audio arrived. Times are tracked as 16 kHz sample indices from the start of the session.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from transcription.engine import guard
from transcription.engine.audio import TARGET_RATE, AudioBuffer, Resampler, decode_pcm
from transcription.engine.config import SessionConfig
from transcription.engine.events import TranscriptEvent, WordTiming
from transcription.engine.models import EngineModels
from transcription.engine.pick import ConfidentStream
from transcription.engine.recognizer import Transcription, open_stream, shift_words
from transcription.engine.stabilizer import Stabilizer
from transcription.engine.vad import CHUNK_MS, SAMPLES_PER_MS

logger = logging.getLogger(__name__)

VAD_STEP = CHUNK_MS * SAMPLES_PER_MS  # feed the VAD in its own chunk size so cuts land on time
MIN_PARTIAL_AUDIO_S = 0.3  # shorter than this, a partial is guesswork
RETRY_EMPTY_PARTIAL_S = 0.2  # after an empty first partial, the next try comes this much later
# Share of the endpointing silence after which the open utterance is decoded ahead of its endpoint:
# if the endpoint follows with no new speech, that decode is the final and costs nothing more. At
# 800 ms endpointing it starts after 200 ms and has 600 ms to finish: a short final's 30 s-window
# decode takes 300-600 ms on a 2-core CPU. Started later (300 ms), it often finished after the
# endpoint and the final waited for it.
SPECULATE_AFTER_ENDPOINT_SHARE = 0.25
LOOKBACK_SAMPLES = TARGET_RATE  # audio kept before an utterance for VAD's start look-back


@dataclass(frozen=True)
class Speculation:
    """A decode of an utterance made during its trailing silence, over samples [start, end).

    ``end`` is where the trailing silence began plus :meth:`StreamingSession._final_tail`: exactly
    the audio the final decodes if the endpoint follows, so reusing it changes nothing."""

    start: int
    end: int
    result: Transcription
    prefix: str = ""  # the agreed text the decode went on from (stable_partials)

    @property
    def text(self) -> str:
        return self.result.text


class StreamingSession:
    def __init__(
        self, config: SessionConfig, models: EngineModels, *, resume_at_s: float = 0.0, first_segment: int = 0
    ) -> None:
        """``resume_at_s``/``first_segment`` continue a session elsewhere (failover, resume): times and
        segment numbers go on from there instead of starting at zero."""
        self.config = config
        self.recognizer = models.recognizer_for(config.model)
        self.stream = open_stream(self.recognizer, config)
        # Two-pass: finals (and the speculations that may become them) decoded by another model.
        self.final_stream = self.stream
        if config.final_model and config.final_model != config.model:
            final_config = replace(config, model=config.final_model, final_model="")
            self.final_stream = open_stream(models.recognizer_for(config.final_model), final_config)
            if config.final_choice == "confident":
                # Its own stream of the session's model: context and language state kept apart from partials'.
                self.final_stream = ConfidentStream(open_stream(self.recognizer, config), self.final_stream)
        # Append-only partials (config.stable_partials): what they agreed on, which the final goes on from.
        self.stabilizer = Stabilizer() if config.stable_partials and self.final_stream.forces_prefix else None
        self.vad_model = models.vad
        self.resampler = Resampler(config.sample_rate)
        self.buffer = AudioBuffer(start=round(resume_at_s * TARGET_RATE))
        self.vad = self.vad_model.open_stream(endpointing_ms=config.endpointing_ms)
        self.vad_origin = self.buffer.end  # session sample index where the current VAD stream began
        self.pending = np.zeros(0, dtype=np.float32)  # resampled audio not yet given to the VAD
        self.input_samples = 0  # samples received at the client's own rate (for exact metering)
        self.utterance_start: int | None = None
        self.next_segment = first_segment
        self.partial_sent = False
        self.last_partial_at = 0.0
        self.last_partial_end = 0
        self.speculation: Speculation | None = None
        # Where the open utterance's trailing silence began, as of the last VAD chunk (None in speech).
        self.silence_from: int | None = None
        # The dispatcher may stretch it under load (DecodeScheduler.partial_interval).
        self.partial_interval_s = config.partial_interval_s
        # Asked just before a final's decode: True when other sessions' work waits for the decode
        # threads, so the final takes a cheaper decode (DecodeScheduler.congested; see recognizer).
        self.thrifty_when: Callable[[], bool] = lambda: False

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received, counted at the client's rate, so it is exact."""
        return self.input_samples / self.config.sample_rate

    @property
    def utterance_open(self) -> bool:
        return self.utterance_start is not None

    def accept_audio(self, data: bytes) -> list[TranscriptEvent]:
        """Take raw audio in the session's encoding; return the finals it completed."""
        samples = decode_pcm(data, encoding=self.config.pcm_encoding, channels=self.config.channels)
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
            events += self._final(self.buffer.end, reason, silence_from=self._silence_start())
        self.vad_origin = self.buffer.end
        self.utterance_start = None
        return events

    def partial_due(self, now: float) -> bool:
        """Whether :meth:`decode_partial` has work now: a speculative final, or a partial."""
        if self.speculation_due():
            return True
        if not self._partial_has_audio():
            return False
        return now - self.last_partial_at >= self.partial_interval_s

    def seconds_until_partial(self, now: float) -> float | None:
        """When a partial falls due; None when only new audio can make one due."""
        if self.speculation_due():
            return 0.0
        if not self._partial_has_audio():
            return None
        return max(0.0, self.last_partial_at + self.partial_interval_s - now)

    def speculation_due(self) -> bool:
        return self._speculation_state() == "due"

    def _speculation_state(self) -> str | None:
        """In trailing silence long enough to speculate: "due" when everything said still needs a
        decode, "covered" when a speculation already decoded it (no partial is news then); else None."""
        if self.utterance_start is None or self.stream.incremental:
            return None  # an incremental decoder's final flushes its cache: it cannot be taken back
        silence_ms = self.vad.trailing_silence_ms()
        if silence_ms < self.config.endpointing_ms * SPECULATE_AFTER_ENDPOINT_SHARE:
            return None
        final_end = self._decode_end(self._silence_start(), self.buffer.end)
        spec = self.speculation
        if spec is None or spec.start != self.utterance_start or spec.end != final_end:
            return "due"
        return "covered"

    def _silence_start(self) -> int | None:
        """The sample where the VAD's current trailing silence began; None while it hears speech."""
        silence_ms = self.vad.trailing_silence_ms()
        if self.utterance_start is None or silence_ms <= 0:
            return None
        return max(self.utterance_start, self.buffer.end - len(self.pending) - silence_ms * SAMPLES_PER_MS)

    def _final_tail(self) -> int:
        """Samples of trailing silence a final decodes: as much as a speculation has heard when it starts.

        Whisper's punctuation depends on it ("10 of clubs." with 200 ms, "10 of clubs" with the VAD's
        70 ms), so a speculated final and one decoded at the endpoint use the same amount."""
        return round(self.config.endpointing_ms * SPECULATE_AFTER_ENDPOINT_SHARE) * SAMPLES_PER_MS

    def _decode_end(self, silence_from: int | None, end: int) -> int:
        """Where a final's decode stops: the tail after the silence's start when that audio is here, else ``end``."""
        if silence_from is not None and silence_from + self._final_tail() <= self.buffer.end:
            return silence_from + self._final_tail()
        return end

    def _partial_has_audio(self) -> bool:
        if not (self.config.interim_results and self.utterance_start is not None):
            return False
        if self._speculation_state() == "covered":
            # A partial here would repeat the speculation's text, and while it ran the endpoint
            # audio would wait behind it, delaying the final.
            return False
        new_audio = self.buffer.end - max(self.last_partial_end, self.utterance_start)
        length = self.buffer.end - self.utterance_start
        return new_audio > 0 and length >= MIN_PARTIAL_AUDIO_S * TARGET_RATE

    def decode_partial(self, now: float | None = None) -> TranscriptEvent | None:
        """Re-decode the open utterance so far; None when there is nothing new to say.

        In trailing silence this decode uses the final's settings and is kept as a speculation.
        """
        if self.utterance_start is None:
            return None
        speculative = self.speculation_due()
        now = time.monotonic() if now is None else now
        late_s = now - (self.last_partial_at + self.partial_interval_s)
        # The next partial is due an interval after this one was due, not after it started: on a busy
        # server one late start would otherwise push every later partial back with it, and the user
        # would wait interval + delay between them. At most half an interval is made up.
        catch_up = min(max(late_s, 0.0), self.partial_interval_s / 2) if self.partial_sent else 0.0
        self.last_partial_at = now - catch_up
        start, end = self.utterance_start, self.buffer.end
        if speculative:
            end = self._decode_end(self._silence_start(), end)  # what the final would decode (Speculation)
        prefix = self.stabilizer.sent if self.stabilizer is not None and speculative else ""
        result = (self.final_stream if speculative else self.stream).decode(
            self.buffer.slice(start, end),
            utterance=start,
            final=speculative,
            beam_size=None if speculative else 1,
            thrifty=speculative and self.thrifty_when(),
            prefix=prefix,
        )
        text = result.text
        if speculative:
            self.speculation = Speculation(start=start, end=end, result=result, prefix=prefix)
        self.last_partial_end = self.buffer.end
        if not text and not self.partial_sent and not speculative:
            # Nothing recognisable yet in a young utterance: try again soon, not a whole (possibly
            # load-stretched) interval later, so the user's first sight of it is not delayed.
            self.last_partial_at -= max(0.0, self.partial_interval_s - RETRY_EMPTY_PARTIAL_S)
        if not text or not self.config.interim_results:
            return None
        self.partial_sent = True
        stable = None
        if self.stabilizer is not None:
            if not speculative:
                self.stabilizer.partial(text)
            stable = self.stabilizer.sent
        event = TranscriptEvent(self.next_segment, text, start / TARGET_RATE, end / TARGET_RATE, is_final=False)
        return replace(event, stable=stable) if stable is not None else event

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
        silence_from = self.silence_from  # the VAD forgets the silence in the chunk that ends the speech
        for start_ms, end_ms in self.vad.feed(samples, is_final=is_final):
            if start_ms >= 0 and self.utterance_start is None:
                self.utterance_start = self.vad_origin + start_ms * SAMPLES_PER_MS
            if end_ms >= 0 and self.utterance_start is not None:
                end = min(self.vad_origin + end_ms * SAMPLES_PER_MS, self.buffer.end)
                events += self._final(end, reason, silence_from=silence_from)
                silence_from = None
        self.silence_from = self._silence_start()
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

    def _final(self, end: int, reason: str, *, silence_from: int | None = None) -> list[TranscriptEvent]:
        """The utterance [utterance_start, end) as a final. ``silence_from``: where its trailing
        silence began, if the VAD heard one; the decode then takes the same tail a speculation would."""
        start = self.utterance_start
        assert start is not None
        end = max(end, start)
        if silence_from is not None and not start < silence_from <= end:
            silence_from = None  # a silence of another utterance, or one after this final's end
        decode_end = self._decode_end(silence_from, end)
        self.utterance_start = None
        self.silence_from = None
        spec, self.speculation = self.speculation, None
        prefix = self.stabilizer.sent if self.stabilizer is not None else ""
        if spec is not None and spec.start == start and spec.end == decode_end and spec.prefix == prefix:
            result = spec.result  # decoded during the trailing silence; nothing was said since
        else:
            result = self.final_stream.decode(
                self.buffer.slice(start, decode_end),
                utterance=start,
                final=True,
                beam_size=None,
                thrifty=self.thrifty_when(),
                prefix=prefix,
            )
        if self.stabilizer is not None:
            self.stabilizer.final(result.text)  # the next utterance starts afresh
        text = result.text
        for stream in {id(self.stream): self.stream, id(self.final_stream): self.final_stream}.values():
            stream.remember(text, result.language or self.config.language)
        had_partial, self.partial_sent = self.partial_sent, False
        self.last_partial_end = end
        if not text and not had_partial:
            # Nothing was said and nothing was promised: no segment number is used.
            return []
        event = TranscriptEvent(
            self.next_segment,
            text,
            start / TARGET_RATE,
            end / TARGET_RATE,
            is_final=True,
            reason=reason,
            language=result.language or self.config.language,
            words=self._word_timings(result, start, end) if self.config.word_timestamps else None,
            confidence=None if result.avg_logprob is None or not text else guard.confidence(result.avg_logprob),
        )
        self.next_segment += 1
        return [event]

    @staticmethod
    def _word_timings(result: Transcription, start: int, end: int) -> tuple[WordTiming, ...]:
        offset, start_s, end_s = start / TARGET_RATE, start / TARGET_RATE, end / TARGET_RATE
        return tuple(
            WordTiming(w.word, w.start, w.end, w.probability) for w in shift_words(result.words, offset, start_s, end_s)
        )

    def _trim_buffer(self) -> None:
        keep_from = self.utterance_start if self.utterance_start is not None else self.buffer.end
        self.buffer.discard_before(keep_from - LOOKBACK_SAMPLES)
