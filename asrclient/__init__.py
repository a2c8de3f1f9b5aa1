"""Client for WebSocket protocol v1: stream a WAV file, print partial and final transcripts.

    python -m transcription.client FILE.wav --url ws://HOST:PORT/ws/v1/transcribe --api-key KEY

Plain Python (no Django) so that it runs anywhere the project's dependencies are installed;
the benchmark and the tests reuse `read_wav` and `stream_audio`.
"""

from .stream import ReceivedMessage, SentFrame, StreamError, StreamResult, stream_audio
from .wav import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, WavAudio, WavError, check_sendable, read_wav

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "ReceivedMessage",
    "SentFrame",
    "StreamError",
    "StreamResult",
    "WavAudio",
    "WavError",
    "check_sendable",
    "read_wav",
    "stream_audio",
]
