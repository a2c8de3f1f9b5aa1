"""Real inference worker processes on the test database and Redis, for the distributed tests.

Started by bench's `WorkerPool`, the one launcher of workers, under a registry prefix of the
cluster's own (tests never see other workers); every worker is stopped when the block ends.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.cluster import WorkerPool

from .paths import artifacts
from .servers import child_env

REDIS_URL = os.environ.get("ASR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def worker_cluster(names: list[str], *, idle_ttl_s: float) -> Iterator[WorkerPool]:
    """Workers ``names``, live in the registry when the block starts; all stopped when it ends."""
    prefix = f"asrtest-{uuid.uuid4().hex[:8]}"
    env = child_env(
        REDIS_URL=REDIS_URL,
        ASR_DISPATCH="celery",
        ASR_REDIS_PREFIX=prefix,
        ASR_WORKER_SESSION_IDLE_S=str(idle_ttl_s),
        ASR_PRELOAD="0",
    )
    for name in ("ASR_REGISTRY_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)  # all three follow REDIS_URL
    pool = WorkerPool(
        env,
        prefix=prefix,
        redis_url=REDIS_URL,
        log_dir=artifacts(),
        log_prefix="worker-",
        loglevel="WARNING",
        startup_timeout=120,
    )
    try:
        for name in names:
            pool.start(name)
        pool.wait_live(set(names))
        yield pool
    finally:
        pool.stop()


def use_celery_in_process(settings: Any, prefix: str) -> None:
    """Point this test process's dispatcher (pytest-django ``settings``) at the workers under
    ``prefix`` on REDIS_URL, with a Redis channel layer for their results."""
    settings.ASR_DISPATCH = "celery"
    settings.ASR_REDIS_PREFIX = prefix
    settings.ASR_REGISTRY_URL = REDIS_URL
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 1000},
        }
    }
