"""WhisperLiveKit (PyPI `whisperlivekit`) as a peer: its venv, its server, a stream adapter.

    python -m bench.peers.whisperlivekit install        # var/peers/whisperlivekit-venv, pinned, no hub
    python -m bench.peers.whisperlivekit smoke [WAV]    # start it, stream WAV in real time: WER, timing

The server runs WhisperLiveKit's faster-whisper backend (LocalAgreement policy, its bundled
Silero VAD, raw PCM input) on the same tiny.en CTranslate2 folder that our engine uses, one shared
model, as many CTranslate2 threads as our engine. `stream_whisperlivekit` speaks its /asr
WebSocket protocol and records the session as our `StreamResult`, so `bench.metrics.analyse`
reads every system's sessions the same way.
"""

from .install import VENV, install
from .server import WhisperLiveKitServer
from .stream import stream_whisperlivekit

__all__ = ["VENV", "WhisperLiveKitServer", "install", "stream_whisperlivekit"]
