"""Real inference worker processes on the test database and Redis, for the distributed tests.

Started by bench's `WorkerPool`, the one launcher of workers, under a registry prefix of the
cluster's own (tests never see other workers); every worker is stopped when the block ends.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from bench.cluster import WorkerPool

from .paths import artifacts
from .servers import child_database_url

REDIS_URL = os.environ.get("ASR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def worker_cluster(names: list[str], *, idle_ttl_s: float) -> Iterator[WorkerPool]:
    """Workers ``names``, live in the registry when the block starts; all stopped when it ends."""
    prefix = f"asrtest-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="asrplatform.settings.base",
        DATABASE_URL=child_database_url(),
        SECRET_KEY=settings.SECRET_KEY,
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
