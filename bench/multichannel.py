"""`python -m bench load --multichannel`: each client streams a stereo call whose channels are
transcribed on their own (``"channels": 2, "multichannel": true``).

A client's two channels are two of the sweep's ordinary sessions, speaking at the same time (the
most a stereo session can cost the server). Its results are split by their ``channel`` and measured
as two clients, each against its own channel's clips, so the level's figures, the SLO and the
capacity count channels: N stereo clients are 2N channels, comparable with 2N mono streams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from asrclient import StreamResult, WavAudio
from asrclient.wav import frame_samples
from bench.evaluation import ConcatenatedSession

from .loadstats import ClientOutcome

CHANNELS = 2
START_OPTIONS = {"channels": CHANNELS, "multichannel": True}


def stereo_audio(left: WavAudio, right: WavAudio, *, chunk_ms: int) -> WavAudio:
    """``left`` on channel 0 and ``right`` on channel 1 (frames of interleaved samples), in whole
    frames of ``chunk_ms``: the shorter one, and the end, padded with silence."""
    step = frame_samples(left.sample_rate, chunk_ms)
    frames = -(-max(left.num_samples, right.num_samples) // step) * step
    samples = np.zeros((frames, CHANNELS), dtype="<i2")
    samples[: left.num_samples, 0] = left.samples
    samples[: right.num_samples, 1] = right.samples
    return WavAudio(left.sample_rate, samples, CHANNELS, "float")


def channel_result(result: StreamResult, channel: int) -> StreamResult:
    """What one channel's listener saw: its partials and finals, and the session's own messages."""
    messages = [m for m in result.messages if m.data.get("channel", channel) == channel]
    return dataclasses.replace(result, messages=messages)


def per_channel(sessions: Sequence[ConcatenatedSession], outcome: ClientOutcome) -> list[ClientOutcome]:
    """A stereo client's outcome as one per channel, each against its channel's ``sessions`` (client
    i's channel c is client CHANNELS*i + c); a mono client's (no ``sessions``) as it is."""
    if not sessions:
        return [outcome]
    return [
        ClientOutcome(
            CHANNELS * outcome.client + channel,
            outcome.offset_s,
            session,
            None if outcome.result is None else channel_result(outcome.result, channel),
            outcome.error,
        )
        for channel, session in enumerate(sessions)
    ]
