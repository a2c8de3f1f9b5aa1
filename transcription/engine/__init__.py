"""The streaming recognizer: VAD, Whisper decoding and per-session state.

Nothing here imports Django, so the gateway's thread pool, a Celery worker and the benchmark all
use the same code.
"""

from transcription.engine.config import ConfigError, SessionConfig, SessionLimits, parse_start
from transcription.engine.events import TranscriptEvent
from transcription.engine.session import StreamingSession

__all__ = [
    "ConfigError",
    "SessionConfig",
    "SessionLimits",
    "StreamingSession",
    "TranscriptEvent",
    "parse_start",
]
