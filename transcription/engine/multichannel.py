"""Per-channel transcription (``multichannel``): each channel of an interleaved stream is its own
utterance stream, with its own VAD state, decoder cache and context, inside one session.

A :class:`MultichannelSession` splits the client's interleaved PCM into channels and drives one
:class:`StreamingSession` per channel, so everything a mono session does (endpointing, partials,
speculative finals, two-pass, context) holds per channel unchanged. Its results carry their
channel (0-based). Segment numbers stay one sequence for the session, given in the order finals are
made: audio is taken in steps of the VAD's own chunk, channel after channel, so a final one channel
makes is numbered before the finals of later audio in another. A partial carries the number its
final gets if no other channel's final comes first: clients key partials by channel.

The decode scheduler sees one session with the interface of a mono one: a partial is due when any
channel's is, and each decode serves the channel that has waited longest (a speculative final first).
"""

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from transcription.engine.audio import AudioFormatError
from transcription.engine.config import SessionConfig
from transcription.engine.events import TranscriptEvent
from transcription.engine.models import EngineModels
from transcription.engine.session import StreamingSession
from transcription.engine.vad import CHUNK_MS

STEP_S = CHUNK_MS / 1000  # audio taken per channel in turn


def split_channels(data: bytes, config: SessionConfig) -> list[bytes]:
    """Interleaved frames in the session's encoding → one mono byte string per channel."""
    if len(data) % config.bytes_per_frame:
        raise AudioFormatError(
            f"Audio frame of {len(data)} bytes is not a whole number of {config.encoding} samples "
            f"({config.bytes_per_frame} bytes per sample across {config.channels} channel(s))."
        )
    sample_bytes = config.bytes_per_frame // config.channels
    dtype = np.dtype(f"V{sample_bytes}")  # samples copied as they are: each channel's session decodes its own
    frames = np.frombuffer(data, dtype=dtype).reshape(-1, config.channels)
    return [frames[:, channel].tobytes() for channel in range(config.channels)]


class MultichannelSession:
    """One session of ``config.channels`` channels, each transcribed on its own.

    Not thread-safe, like StreamingSession: the session loop calls it from one thread at a time.
    """

    def __init__(
        self, config: SessionConfig, models: EngineModels, *, resume_at_s: float = 0.0, first_segment: int = 0
    ) -> None:
        self.config = config
        mono = replace(config, channels=1, multichannel=False)
        self.channels = tuple(StreamingSession(mono, models, resume_at_s=resume_at_s) for _ in range(config.channels))
        self.next_segment = first_segment
        self.step_bytes = max(1, round(STEP_S * config.sample_rate)) * (config.bytes_per_frame // config.channels)
        self._partial_interval_s = config.partial_interval_s

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received (of each channel: the session's duration, not what is metered)."""
        return self.channels[0].audio_seconds

    @property
    def partial_interval_s(self) -> float:
        return self._partial_interval_s

    @partial_interval_s.setter
    def partial_interval_s(self, value: float) -> None:
        """The dispatcher stretches it under load, for every channel alike."""
        self._partial_interval_s = value
        for channel in self.channels:
            channel.partial_interval_s = value

    @property
    def thrifty_when(self) -> Callable[[], bool]:
        return self.channels[0].thrifty_when

    @thrifty_when.setter
    def thrifty_when(self, value: Callable[[], bool]) -> None:
        for channel in self.channels:
            channel.thrifty_when = value

    def accept_audio(self, data: bytes) -> list[TranscriptEvent]:
        """Take interleaved audio; return the finals it completed, of every channel, in the order made."""
        parts = split_channels(data, self.config)
        events: list[TranscriptEvent] = []
        for offset in range(0, len(parts[0]), self.step_bytes):
            for index, part in enumerate(parts):
                events += self._tagged(index, self._enter(index).accept_audio(part[offset : offset + self.step_bytes]))
        return events

    def finalize(self, reason: str) -> list[TranscriptEvent]:
        """End every channel's open utterance now (client request, stop or disconnect)."""
        events: list[TranscriptEvent] = []
        for index in range(len(self.channels)):
            events += self._tagged(index, self._enter(index).finalize(reason))
        return events

    def partial_due(self, now: float) -> bool:
        return any(channel.partial_due(now) for channel in self.channels)

    def seconds_until_partial(self, now: float) -> float | None:
        waits = [w for channel in self.channels if (w := channel.seconds_until_partial(now)) is not None]
        return min(waits) if waits else None

    def speculation_due(self) -> bool:
        return any(channel.speculation_due() for channel in self.channels)

    @property
    def partial_sent(self) -> bool:
        """Of the channel decoded next: False while its utterance has shown nothing yet (the scheduler
        serves such a partial first); True when no channel has one due."""
        index = self._next_channel(time.monotonic())
        return True if index is None else self.channels[index].partial_sent

    @property
    def last_partial_at(self) -> float:
        """Of the channel decoded next: the scheduler orders partials by when they fell due."""
        index = self._next_channel(time.monotonic())
        channels = self.channels if index is None else (self.channels[index],)
        return min(channel.last_partial_at for channel in channels)

    def decode_partial(self, now: float | None = None) -> TranscriptEvent | None:
        """One channel's partial or speculative final: the one that has waited longest; None if none is due."""
        now = time.monotonic() if now is None else now
        index = self._next_channel(now)
        if index is None:
            return None
        event = self._enter(index).decode_partial(now)
        return None if event is None else self._tagged(index, [event])[0]

    def _next_channel(self, now: float) -> int | None:
        """The channel whose decode is due: a speculative final first, then the partial due longest."""
        for index, channel in enumerate(self.channels):
            if channel.speculation_due():
                return index
        due = [(channel.last_partial_at, i) for i, channel in enumerate(self.channels) if channel.partial_due(now)]
        return min(due)[1] if due else None

    def _enter(self, index: int) -> StreamingSession:
        """One channel, about to be called: it numbers from the session's next segment."""
        session = self.channels[index]
        session.next_segment = self.next_segment
        return session

    def _tagged(self, index: int, events: list[TranscriptEvent]) -> list[TranscriptEvent]:
        """What the channel called after :meth:`_enter` made, tagged; the numbers it used are taken."""
        self.next_segment = self.channels[index].next_segment
        return [replace(event, channel=index) for event in events]


EngineSession = StreamingSession | MultichannelSession


def open_engine_session(
    config: SessionConfig, models: EngineModels, *, resume_at_s: float = 0.0, first_segment: int = 0
) -> EngineSession:
    """The engine of one session: per channel when it asked for ``multichannel``, else mixed down."""
    if config.multichannel:
        return MultichannelSession(config, models, resume_at_s=resume_at_s, first_segment=first_segment)
    return StreamingSession(config, models, resume_at_s=resume_at_s, first_segment=first_segment)
