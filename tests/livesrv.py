"""The real server (``python -m asrplatform.server``) in a subprocess, on the test database (not a test module)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class LiveServer:
    def __init__(
        self, extra_env: dict[str, str] | None = None, port: int | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        """``tls``: (private key, certificate chain) PEM files; the server then speaks wss:// and https://."""
        self.port = port or free_port()
        self.url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}/ws/v1/transcribe"
        self.http_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        listen = ["--host", "127.0.0.1", "--port", str(self.port)]
        if tls:
            listen += ["--ssl-keyfile", str(tls[0]), "--ssl-certfile", str(tls[1])]
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="asrplatform.settings.base",
            DATABASE_URL=test_database_url(),
            SECRET_KEY=settings.SECRET_KEY,
            **(extra_env or {}),
        )
        self.log_path = REPO / "test-artifacts" / f"server-{self.port}.log"
        self.log = open(self.log_path, "w") if self._artifacts() else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "asrplatform.server", *listen],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_listening()

    @staticmethod
    def _artifacts() -> bool:
        (REPO / "test-artifacts").mkdir(exist_ok=True)
        return True

    def _wait_until_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start listening")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
