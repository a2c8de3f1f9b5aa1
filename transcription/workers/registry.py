"""Moved to :mod:`transcription.runner.registry` (the Celery dispatcher reads it, the workers write
it, so it sits below both). Kept so that existing imports, such as the gateway's
``from transcription.workers.registry import WorkerRefusal``, go on working."""

from transcription.runner.contract import NoCapacity, Overloaded, WorkerRefusal
from transcription.runner.registry import (
    WorkerInfo,
    choose_worker,
    decode,
    encode,
    is_alive,
    live_workers,
    live_workers_sync,
    queue_depths_sync,
    queue_redis_keys,
    remove_sync,
    worker_key,
    worker_queue,
    workers_set,
    write_sync,
)

__all__ = [
    "NoCapacity",
    "Overloaded",
    "WorkerInfo",
    "WorkerRefusal",
    "choose_worker",
    "decode",
    "encode",
    "is_alive",
    "live_workers",
    "live_workers_sync",
    "queue_depths_sync",
    "queue_redis_keys",
    "remove_sync",
    "worker_key",
    "worker_queue",
    "workers_set",
    "write_sync",
]
