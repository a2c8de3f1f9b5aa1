"""WhisperLive's server as a subprocess of the benchmark, in its own venv, on a local model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from bench.server import ServerError

from ..process import PeerProcess, default_model_dir
from .install import VENV
from .stream import CLOSE_TIMEOUT_S, END_OF_AUDIO, SERVER_READY, session_options

logger = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("serve.py")

__all__ = ["WhisperLiveServer", "default_model_dir"]


class WhisperLiveServer(PeerProcess):
    """WhisperLive on `port` (a free one if None) serving the CTranslate2 model in `model_dir`.

    On entry it waits until the port accepts connections and, with `preload`, until one empty
    session has loaded the model (WhisperLive loads it for its first client), so what follows
    measures steady state. `url` is what `stream_whisperlive` takes.
    """

    label = "WhisperLive"
    install_hint = "python -m bench.peers.whisperlive install"
    log_name = "whisperlive"

    def __init__(
        self,
        port: int | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        venv: Path = VENV,
        threads: int | None = None,
        max_clients: int = 64,
        max_connection_time_s: int = 3600,
        startup_timeout: float = 60.0,
        log_path: Path | None = None,
        preload: bool = True,
    ):
        super().__init__(
            port,
            host=host,
            venv=venv,
            threads=threads,
            startup_timeout=startup_timeout,
            log_path=log_path,
        )
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.max_clients = max_clients
        self.max_connection_time_s = max_connection_time_s
        self.preload = preload

    def command(self) -> list[str]:
        command = [str(self.python), "-I", "-u", str(LAUNCHER), "--host", self.host, "--port", str(self.port)]
        command += ["--model-dir", str(self.model_dir), "--max-clients", str(self.max_clients)]
        return command + ["--max-connection-time", str(self.max_connection_time_s)]

    def ready(self) -> None:
        logger.info("whisperlive listening pid=%d port=%d log=%s", self.pid, self.port, self.log_path)
        if self.preload:
            self._load_model()

    def _load_model(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=10, close_timeout=10) as ws:
            ws.send(json.dumps(session_options(f"preload-{uuid.uuid4()}", language="en")))
            reply = json.loads(ws.recv(timeout=self.startup_timeout))
            if reply.get("message") != SERVER_READY:
                raise ServerError(f"WhisperLive did not load the model: {reply}\n{self.log_tail()}")
            ws.send(END_OF_AUDIO)
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                while True:
                    ws.recv(timeout=CLOSE_TIMEOUT_S)
