"""The platform a chaos scenario runs against (embedded or Celery, on its own database and Redis),
and the four faults it injects into it."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..cluster import CeleryStack, ensure_database
from ..server import GatewayServer, ServerError, free_port, stop_process


def _enterprise_key(gateway: GatewayServer, name: str) -> str:
    """A tenant whose quota and concurrency never stop the run (the default plan allows 2 streams)."""
    lines = gateway._manage("create_tenant", name, "--plan", "enterprise").strip().splitlines()
    if not lines:
        raise ServerError("create_tenant printed nothing")
    return lines[-1].strip()


class OwnRedis:
    """A redis-server of the run's own on a free port, no persistence: killed and restarted at will."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.log_path = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            time.sleep(0.1)
        raise ServerError(f"redis-server on port {self.port} did not answer")

    def kill9(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@dataclass
class Platform:
    """What a scenario runs against, and the hooks its fault needs."""

    url: str
    api_key: str
    gateway: GatewayServer
    stack: CeleryStack | None = None
    redis: OwnRedis | None = None
    relaunches: int = 0

    def relaunch_gateway(self) -> None:
        self.relaunches += 1
        self.gateway.log_path = self.gateway.log_path.with_name(f"gateway-{self.relaunches}.log")
        self.gateway.launch()

    def log_paths(self) -> list[Path]:
        paths = sorted(self.gateway.log_path.parent.glob("*.log"))
        return [p for p in paths if p.exists()]


@contextlib.contextmanager
def platform(args: argparse.Namespace, dispatch: str, workdir: Path) -> Iterator[Platform]:
    run_id = uuid.uuid4().hex[:8]
    pg_url = args.pg_url.rstrip("/")
    ensure_database(pg_url, args.database)
    outbox = workdir / "outbox"  # every gateway of the scenario: a restarted one replays the journal
    if dispatch == "local":
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "asrplatform.settings.base",
            "DATABASE_URL": f"{pg_url}/{args.database}",
            "ASR_DEV": os.environ.get("ASR_DEV", "1"),
            "ASR_OUTBOX_DIR": str(outbox),
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("REDIS_URL", "ASR_DISPATCH", "ASR_REGISTRY_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            env.pop(name, None)
        gateway = GatewayServer(workdir, env, tenant=f"chaos-{run_id}", log_name="gateway.log")
        try:
            gateway.prepare()
            key = _enterprise_key(gateway, f"chaos-{run_id}-ent")
            gateway.launch()
            yield Platform(gateway.url, key, gateway)
        finally:
            gateway.stop()
        return
    redis_server = OwnRedis(workdir)
    redis_server.start()
    stack = CeleryStack(
        workdir, redis_url=redis_server.url, pg_url=pg_url, database=args.database, workers=args.workers
    )
    stack.env["ASR_OUTBOX_DIR"] = str(outbox)
    stack.gateway.env = stack.env
    stack.pool.env = stack.env
    try:
        with stack:
            key = _enterprise_key(stack.gateway, f"chaos-{run_id}-ent")
            yield Platform(stack.url, key, stack.gateway, stack=stack, redis=redis_server)
    finally:
        redis_server.stop()


# --- the faults ----------------------------------------------------------------------------------


def _pg_stall(args: argparse.Namespace, platform: Platform, notes: list[str]) -> None:
    import psycopg

    url = f"{args.pg_url.rstrip('/')}/{args.database}"
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.execute("SET lock_timeout = '20s'")
        conn.execute("LOCK TABLE transcription_segment, transcription_session IN ACCESS EXCLUSIVE MODE")
        notes.append(f"{time.strftime('%H:%M:%S')} tables locked")
        time.sleep(args.stall_s)
        conn.commit()
    notes.append(f"{time.strftime('%H:%M:%S')} lock released after {args.stall_s:.0f} s")


def _redis_restart(args: argparse.Namespace, platform: Platform, notes: list[str]) -> None:
    assert platform.redis is not None
    platform.redis.kill9()
    notes.append(f"{time.strftime('%H:%M:%S')} redis-server SIGKILLed")
    time.sleep(3)
    platform.redis.start()
    notes.append(f"{time.strftime('%H:%M:%S')} redis-server restarted on port {platform.redis.port}")


def _worker_kill9(args: argparse.Namespace, platform: Platform, notes: list[str]) -> None:
    assert platform.stack is not None
    sessions = platform.stack.pool.sessions_by_worker()
    victim = max(sessions, key=lambda name: len(sessions[name])) if sessions else platform.stack.worker_names[0]
    platform.stack.pool.kill9(victim)
    notes.append(f"{time.strftime('%H:%M:%S')} worker {victim} SIGKILLed (sessions {sessions.get(victim)})")


def _gateway_kill9(args: argparse.Namespace, platform: Platform, notes: list[str]) -> None:
    assert platform.gateway.process is not None
    platform.gateway.process.send_signal(signal.SIGKILL)
    platform.gateway.process.wait()
    notes.append(f"{time.strftime('%H:%M:%S')} gateway SIGKILLed")
    started = time.monotonic()
    platform.relaunch_gateway()
    notes.append(f"{time.strftime('%H:%M:%S')} new gateway listening after {time.monotonic() - started:.1f} s")


INJECT: dict[str, Callable[[argparse.Namespace, Platform, list[str]], None]] = {
    "pg-stall": _pg_stall,
    "redis-restart": _redis_restart,
    "worker-kill9": _worker_kill9,
    "gateway-kill9": _gateway_kill9,
}
