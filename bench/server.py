"""Start the embedded server (uvicorn + SQLite) in a subprocess and measure its CPU and memory.

A real process, started the way an operator starts it, so the numbers include everything the
server does (Channels, the database, the engine) and nothing the benchmark itself does.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """The embedded server could not be prepared or started; the message says which step."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout`; returns once the process is gone."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def read_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a log file; "" when it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on; comm may hold spaces


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its live descendants (all threads included)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def memory_bytes(pid: int) -> dict[str, int]:
    """Peak (VmHWM) and current (VmRSS) resident memory of the server process."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) * 1024
    return {"peak_rss": values.get("VmHWM", 0), "rss": values.get("VmRSS", 0)}


class GatewayServer:
    """migrate, create a tenant and key, run the server on a free port; `stop()` ends only it.

    The one launcher of `python -m asrplatform.server` for the benchmark and the tests (through
    tests/support/servers.py, with `prepare=False`: the test database is migrated already).
    `tls`: (private key, certificate chain) PEM files; the server then speaks wss:// and https://.
    """

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        *,
        port: int | None = None,
        startup_timeout: float = 180.0,
        tenant: str = "bench",
        log_name: str = "server.log",
        prepare: bool = True,
        tls: tuple[Path, Path] | None = None,
    ):
        self.workdir = workdir
        self.needs_prepare = prepare
        self.tls = tls
        self.env = env
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.tenant = tenant
        self.log_path = workdir / log_name
        self.process: subprocess.Popen[bytes] | None = None
        self.api_key = ""

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws/v1/transcribe"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _manage(self, *args: str) -> str:
        command = [sys.executable, "manage.py", *args]
        proc = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise ServerError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{tail}")
        return proc.stdout

    def start(self) -> None:
        if self.needs_prepare:
            self.prepare()
        self.launch()

    def prepare(self) -> None:
        """Migrate the database and mint a key for a tenant of this run."""
        self._manage("migrate", "--noinput")
        lines = self._manage("create_tenant", self.tenant).strip().splitlines()
        if not lines:
            raise ServerError("create_tenant printed nothing")
        self.api_key = lines[-1].strip()

    def launch(self) -> None:
        """Start the server and wait until it accepts connections and has its models in memory."""
        command = [sys.executable, "-m", "asrplatform.server", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.tls:
            command += ["--ssl-keyfile", str(self.tls[0]), "--ssl-certfile", str(self.tls[1])]
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        log.close()
        logger.info("server starting pid=%d port=%d", self.process.pid, self.port)
        deadline = time.monotonic() + self.startup_timeout
        self._wait_until_listening(deadline)
        self._wait_while_models_load(deadline)

    def _wait_until_listening(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                raise ServerError(f"the server exited with {code}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise ServerError(f"the server did not listen within {self.startup_timeout:.0f} s")

    def _wait_while_models_load(self, deadline: float) -> None:
        """Until /readyz no longer says the models are loading, so a measured or tested first session
        is not the one that waits for them (a server that is unready for another reason is left
        to its caller)."""
        context = ssl._create_unverified_context() if self.tls else None  # the tests' own certificate
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/readyz", timeout=5, context=context) as response:
                    body = response.read()
            except urllib.error.HTTPError as error:
                body = error.read()
            except OSError:
                body = b"{}"
            try:
                state = json.loads(body).get("checks", {}).get("models")
            except ValueError:
                state = None
            if state != "loading":
                return
            time.sleep(0.2)
        raise ServerError(f"the server's models did not load within {self.startup_timeout:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        return read_tail(self.log_path, lines)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def __enter__(self) -> GatewayServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EmbeddedServer(GatewayServer):
    """The embedded platform as `make run` serves it: SQLite, in-memory layer, engine in-process."""

    def __init__(self, workdir: Path, *, port: int | None = None, startup_timeout: float = 180.0):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "asrplatform.settings.base",
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("REDIS_URL", None)  # embedded mode: in-memory layer, engine in-process
        env.pop("ASR_DISPATCH", None)
        super().__init__(workdir, env, port=port, startup_timeout=startup_timeout)
