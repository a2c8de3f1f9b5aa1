"""WhisperLiveKit's server as a subprocess of the benchmark, in its own venv, on a local model."""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from pathlib import Path

from bench.server import ServerError

from ..process import PeerProcess, default_model_dir
from ..smoke import JFK
from .install import VENV

logger = logging.getLogger(__name__)


class WhisperLiveKitServer(PeerProcess):
    """`whisperlivekit-server` on `port` (a free one if None) serving the CTranslate2 model in `model_dir`.

    What it runs, and why: the faster-whisper backend under the LocalAgreement policy (its
    SimulStreaming policy decodes with PyTorch Whisper weights, which this folder does not have),
    English, raw PCM s16le input (no FFmpeg), its bundled Silero VAD (VAC) as by default, no
    diarization, no translation. It warms the model up on `warmup_wav` (by default it would
    download jfk.wav), and it loads the model before it listens, so once `/health` says ready the
    first session is steady state. `url` is what `stream_whisperlivekit` takes.
    """

    label = "WhisperLiveKit"
    install_hint = "python -m bench.peers.whisperlivekit install"
    log_name = "whisperlivekit"

    def __init__(
        self,
        port: int | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        venv: Path = VENV,
        threads: int | None = None,
        startup_timeout: float = 120.0,
        log_path: Path | None = None,
        warmup_wav: Path = JFK,
    ):
        super().__init__(
            port, host=host, venv=venv, threads=threads, startup_timeout=startup_timeout, log_path=log_path
        )
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.warmup_wav = warmup_wav

    def command(self) -> list[str]:
        if not (self.model_dir / "model.bin").is_file():
            # WhisperLiveKit would take a folder without one as a model name to download.
            raise ServerError(f"no CTranslate2 model (model.bin) in {self.model_dir}")
        return [
            *(str(self.python), "-I", "-u", "-m", "whisperlivekit.basic_server"),
            *("--host", self.host, "--port", str(self.port)),
            *("--model", "tiny.en", "--model_dir", str(self.model_dir)),  # the name only sets English
            *("--backend", "faster-whisper", "--backend-policy", "localagreement", "--lan", "en"),
            *("--pcm-input", "--warmup-file", str(self.warmup_wav), "--log-level", "INFO"),
        ]

    def ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        health = f"http://{self.host}:{self.port}/health"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
        while time.monotonic() < deadline:
            self.alive_or_raise()
            try:
                with opener.open(health, timeout=5) as reply:
                    if json.load(reply).get("ready"):
                        logger.info("whisperlivekit ready pid=%d port=%d log=%s", self.pid, self.port, self.log_path)
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise ServerError(f"WhisperLiveKit was not ready within {self.startup_timeout:.0f} s:\n{self.log_tail()}")
