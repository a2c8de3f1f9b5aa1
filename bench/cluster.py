"""Celery dispatch for the benchmark: PostgreSQL, Redis, inference workers and a gateway.

Real processes, started the way `make stack` starts them (`manage.py asr_worker`, the server with
ASR_DISPATCH=celery), under a registry prefix and worker names of this run's own: workers of any
other stack sharing the Redis are never picked, and never get this run's tasks (a worker's Celery
queue is named after the worker alone, not after the prefix).

`WorkerPool` is the one launcher of inference workers: the benchmark's `CeleryStack` and the
distributed tests (tests/support/clusters.py) both start theirs with it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

from transcription.runner import registry

from .server import ROOT, GatewayServer, ServerError, read_tail, stop_process

logger = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432"
DEFAULT_DATABASE = "asrbench"


def ensure_database(pg_url: str, name: str) -> None:
    """Create the PostgreSQL database `name` on the server at `pg_url` unless it exists."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(f"{pg_url}/postgres", autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created meanwhile by someone else
    except psycopg.Error as exc:
        raise ServerError(f"PostgreSQL at {pg_url}: {exc}") from exc


def stack_from_args(workdir: Path, args: argparse.Namespace) -> CeleryStack:
    """The stack the `--dispatch celery` flags describe, announced on stderr (not yet started)."""
    stack = CeleryStack(
        workdir,
        redis_url=args.redis_url,
        pg_url=args.pg_url,
        database=args.database,
        workers=args.workers,
        worker_loglevel=args.worker_loglevel,
    )
    print(
        f"starting {args.workers} inference workers and a Celery-dispatch gateway on port "
        f"{stack.gateway.port} (prefix {stack.prefix}) ...",
        file=sys.stderr,
    )
    return stack


class WorkerPool:
    """Inference worker processes (`manage.py asr_worker`) under a registry prefix of their own.

    `start(name)` starts one (again after `kill9`), `wait_live` waits until the named ones
    heartbeat in the registry; `stop()` ends every worker it started (SIGTERM, then SIGKILL) and
    removes what they left in Redis under the prefix.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        prefix: str,
        redis_url: str,
        log_dir: Path,
        log_prefix: str = "celery-",
        loglevel: str = "INFO",
        startup_timeout: float = 240.0,
    ):
        self.env = env
        self.prefix = prefix
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.log_prefix = log_prefix
        self.loglevel = loglevel
        self.startup_timeout = startup_timeout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._redis: redis.Redis | None = None

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        return self._redis

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{self.log_prefix}{name}.log"

    def log_tail(self, name: str, lines: int = 20) -> str:
        return read_tail(self.log_path(name), lines)

    def start(self, name: str) -> None:
        command = [sys.executable, "manage.py", "asr_worker", "--name", name, "--loglevel", self.loglevel]
        log = open(self.log_path(name), "wb")  # noqa: SIM115 - owned by the child for its lifetime
        self.processes[name] = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        log.close()
        logger.info("worker starting name=%s pid=%d", name, self.processes[name].pid)

    def live_workers(self) -> list[registry.WorkerInfo]:
        return registry.live_workers_sync(self.redis, self.prefix)

    def sessions_by_worker(self) -> dict[str, list[str]]:
        return {w.id: w.sessions for w in self.live_workers()}

    def wait_live(self, names: set[str], timeout: float | None = None) -> None:
        """Until every named worker heartbeats; ServerError if one exits or time runs out."""
        timeout = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ServerError(f"worker {name} exited with {process.returncode}:\n{self.log_tail(name)}")
            if names <= {w.id for w in self.live_workers()}:
                return
            time.sleep(0.3)
        raise ServerError(f"workers {sorted(names)} did not register within {timeout:.0f} s")

    def kill9(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    def stop(self) -> None:
        """End every worker (SIGTERM: Celery's warm shutdown deregisters it and deletes its queue;
        SIGKILL after 20 s), then tidy this pool's keys."""
        running = [p for p in self.processes.values() if p.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            stop_process(process, timeout=20)
        self._tidy_redis()

    def _tidy_redis(self) -> None:
        """Remove this pool's keys (its prefix is its own), queues and kombu bindings."""
        if self._redis is None:
            return
        try:
            keys = list(self._redis.scan_iter(match=f"{self.prefix}:*", count=1000))  # registry, counters
            for name in self.processes:
                keys += registry.queue_redis_keys(registry.worker_queue(self.prefix, name))
            if keys:
                self._redis.delete(*keys)
            self._redis.close()
        except Exception:
            logger.warning("could not tidy Redis keys of %s", self.prefix, exc_info=True)


class CeleryStack:
    """N inference workers and one gateway (asrplatform.server, ASR_DISPATCH=celery) on PostgreSQL + Redis.

    `start()` migrates, starts the workers (they load their models while the gateway starts) and
    waits until every one of them heartbeats in the registry; `stop()` ends every process it
    started and removes what they left in Redis.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        redis_url: str = DEFAULT_REDIS_URL,
        pg_url: str = DEFAULT_PG_URL,
        database: str = DEFAULT_DATABASE,
        workers: int = 2,
        worker_loglevel: str = "INFO",
        startup_timeout: float = 240.0,
    ):
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"asrbench-{self.run_id}"
        self.redis_url = redis_url
        self.pg_url = pg_url.rstrip("/")
        self.database = database
        self.worker_names = [f"bench-{self.run_id}-w{i + 1}" for i in range(workers)]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "asrplatform.settings.base",
            "DATABASE_URL": f"{self.pg_url}/{database}",
            "REDIS_URL": redis_url,
            "ASR_DISPATCH": "celery",
            "ASR_DEV": os.environ.get("ASR_DEV", "1"),  # a benchmark stack on this machine
            "ASR_REDIS_PREFIX": self.prefix,
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("ASR_REGISTRY_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            self.env.pop(name, None)  # all three follow REDIS_URL
        self.gateway = GatewayServer(
            workdir,
            self.env,
            startup_timeout=startup_timeout,
            tenant=f"bench-{self.run_id}",
            log_name="celery-gateway.log",
        )
        self.pool = WorkerPool(
            self.env,
            prefix=self.prefix,
            redis_url=redis_url,
            log_dir=workdir,
            loglevel=worker_loglevel,
            startup_timeout=startup_timeout,
        )

    # --- what the benchmark reads --------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def api_key(self) -> str:
        return self.gateway.api_key

    @property
    def pid(self) -> int:
        return self.gateway.pid

    @property
    def worker_pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.pool.processes.items()}

    def worker_log(self, name: str) -> Path:
        return self.pool.log_path(name)

    def log_paths(self) -> list[Path]:
        return [self.gateway.log_path, *(self.worker_log(n) for n in self.worker_names)]

    def live_workers(self) -> list[registry.WorkerInfo]:
        return self.pool.live_workers()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.pool.redis.ping()
        except Exception as exc:
            raise ServerError(f"Redis at {self.redis_url}: {exc}") from exc
        ensure_database(self.pg_url, self.database)
        self.gateway.prepare()
        for name in self.worker_names:
            self.pool.start(name)
        self.gateway.launch()
        self.pool.wait_live(set(self.worker_names))

    def pinned(self) -> list[str]:
        """The worker of each session so far, in order, from the gateway's log."""
        try:
            text = self.gateway.log_path.read_text(errors="replace")
        except OSError:
            return []
        return re.findall(r"session pinned session_id=\S+ worker=(\S+)", text)

    def log_tail(self, name: str, lines: int = 20) -> str:
        return self.pool.log_tail(name, lines)

    def stop(self) -> None:
        """End the gateway and every worker (SIGTERM, then SIGKILL), then tidy this run's keys."""
        try:
            self.gateway.stop()
        finally:
            self.pool.stop()

    def __enter__(self) -> CeleryStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
