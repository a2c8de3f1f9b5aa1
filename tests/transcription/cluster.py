"""Real inference worker processes for the distributed tests (not a test module)."""

import os
import signal
import subprocess
import sys
import time
import uuid

import redis
from django.conf import settings

from tests.conftest import REPO
from tests.livesrv import test_database_url
from transcription.runner import registry

REDIS_URL = os.environ.get("ASR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Cluster:
    """Worker subprocesses sharing a registry prefix of their own (so tests never see other workers)."""

    def __init__(self, *, idle_ttl_s: float) -> None:
        self.prefix = f"asrtest-{uuid.uuid4().hex[:8]}"
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.idle_ttl_s = idle_ttl_s
        self.processes: dict[str, subprocess.Popen] = {}
        (REPO / "test-artifacts").mkdir(exist_ok=True)

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="asrplatform.settings.base",
            DATABASE_URL=test_database_url(),
            SECRET_KEY=settings.SECRET_KEY,
            REDIS_URL=REDIS_URL,
            ASR_DISPATCH="celery",
            ASR_REDIS_PREFIX=self.prefix,
            ASR_WORKER_SESSION_IDLE_S=str(self.idle_ttl_s),
            ASR_PRELOAD="0",
        )

    def start(self, name: str) -> None:
        log = open(REPO / "test-artifacts" / f"worker-{name}.log", "w")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "manage.py", "asr_worker", "--name", name, "--loglevel", "WARNING"],
            cwd=REPO,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_live(self, names: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if names <= {w.id for w in self.workers()}:
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {name} exited with {process.returncode}")
            time.sleep(0.3)
        raise TimeoutError(f"workers {names} did not register")

    def workers(self) -> list[registry.WorkerInfo]:
        return registry.live_workers_sync(self.redis, self.prefix)

    def sessions_by_worker(self) -> dict[str, list[str]]:
        return {w.id: w.sessions for w in self.workers()}

    def kill9(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
