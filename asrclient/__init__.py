"""Client for WebSocket protocol v1: stream a WAV file, print partial and final transcripts.

    asrclient FILE.wav --url ws://HOST:PORT/ws/v1/transcribe --api-key KEY
    python -m asrclient FILE.wav --url ws://HOST:PORT/ws/v1/transcribe --api-key KEY

Plain Python (no Django, only numpy and websockets) and its own distribution
(`pip install ./asrclient`), so it installs and runs without the service; the benchmark and
the tests reuse `read_wav` and `stream_audio`.
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
