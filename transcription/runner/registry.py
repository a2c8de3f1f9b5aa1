"""The registry of live inference workers in Redis.

Each worker writes ``<prefix>:worker:<id>`` (JSON: queue, capacity, device, sessions, lag) with a
TTL a few heartbeats long, and adds its id to ``<prefix>:workers``. A worker that stops
heartbeating disappears when its key expires; nobody has to clean up after it.

A gateway keeps ``<prefix>:session:<id>`` for each live session it dispatches: if that key is gone,
Redis lost its data (restarted empty), and with it maybe commands and results in flight.
"""

import asyncio
import json
import random
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

from transcription.runner.contract import NoCapacity, Overloaded


@dataclass
class WorkerInfo:
    id: str
    queue: str
    capacity: int
    device: str
    model: str
    host: str
    pid: int
    sessions: list[str] = field(default_factory=list)
    lag_s: float = 0.0
    started_at: float = 0.0
    beat_at: float = 0.0

    @property
    def load(self) -> float:
        return len(self.sessions) / max(self.capacity, 1)


def worker_key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:worker:{worker_id}"


def session_key(prefix: str, session_id: str) -> str:
    return f"{prefix}:session:{session_id}"


def workers_set(prefix: str) -> str:
    return f"{prefix}:workers"


def worker_queue(prefix: str, worker_id: str) -> str:
    """The Celery queue a worker consumes: private to it, and to the deployment's prefix."""
    return f"{prefix}.worker.{worker_id}"


def queue_redis_keys(queue: str) -> list[str]:
    """The Redis keys Celery (kombu) keeps for a queue, to delete once its worker is gone."""
    return [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]


def orphaned_queues_sync(client, prefix: str) -> set[str]:
    """Worker queues in Redis whose worker is not in the registry: a worker deletes its own queue
    when it stops, but one killed (``-9``, host lost) leaves it, with any commands still in it."""
    found = {_text(key) for key in client.scan_iter(match=f"{prefix}.worker.*", count=1000)}
    bindings = client.scan_iter(match=f"_kombu.binding.{prefix}.worker.*", count=1000)
    found |= {_text(key).removeprefix("_kombu.binding.") for key in bindings}
    return found - {worker.queue for worker in live_workers_sync(client, prefix)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def queue_depths_sync(client, queues: list[str]) -> list[int]:
    """Messages waiting in each queue's Redis list (kombu's key without a priority; prefetched ones are gone)."""
    pipe = client.pipeline()
    for queue in queues:
        pipe.llen(queue_redis_keys(queue)[0])
    return [int(n) for n in pipe.execute()]


def encode(info: WorkerInfo) -> str:
    return json.dumps(asdict(info))


def decode(raw: bytes | str) -> WorkerInfo:
    return WorkerInfo(**json.loads(raw))


def choose_worker(workers: list[WorkerInfo], *, max_lag_s: float, exclude: Collection[str] = frozenset()) -> WorkerInfo:
    """The least-loaded live worker that keeps up with real time and has room."""
    candidates = [w for w in workers if w.id not in exclude]
    if not candidates:
        raise NoCapacity()
    fit = [w for w in candidates if w.lag_s <= max_lag_s and len(w.sessions) < w.capacity]
    if not fit:
        raise Overloaded()
    lowest = min(w.load for w in fit)
    return random.choice([w for w in fit if w.load == lowest])


def write_sync(client, prefix: str, info: WorkerInfo, ttl_s: float) -> None:
    info.beat_at = time.time()
    pipe = client.pipeline()
    pipe.set(worker_key(prefix, info.id), encode(info), px=int(ttl_s * 1000))
    pipe.sadd(workers_set(prefix), info.id)
    pipe.execute()


def remove_sync(client, prefix: str, worker_id: str) -> None:
    pipe = client.pipeline()
    pipe.delete(worker_key(prefix, worker_id))
    pipe.srem(workers_set(prefix), worker_id)
    pipe.execute()


def live_workers_sync(client, prefix: str) -> list[WorkerInfo]:
    ids = sorted(i.decode() if isinstance(i, bytes) else i for i in client.smembers(workers_set(prefix)))
    if not ids:
        return []
    values = client.mget([worker_key(prefix, i) for i in ids])
    gone = [i for i, v in zip(ids, values, strict=True) if v is None]
    if gone:
        client.srem(workers_set(prefix), *gone)
    return [decode(v) for v in values if v is not None]


async def live_workers(client, prefix: str) -> list[WorkerInfo]:
    ids = sorted(i.decode() if isinstance(i, bytes) else i for i in await client.smembers(workers_set(prefix)))
    if not ids:
        return []
    values = await client.mget([worker_key(prefix, i) for i in ids])
    gone = [i for i, v in zip(ids, values, strict=True) if v is None]
    if gone:
        await client.srem(workers_set(prefix), *gone)
    return [decode(v) for v in values if v is not None]


async def is_alive(client, prefix: str, worker_id: str) -> bool:
    return bool(await client.exists(worker_key(prefix, worker_id)))


async def mark_session(client, prefix: str, session_id: str, ttl_s: float) -> None:
    await client.set(session_key(prefix, session_id), 1, px=int(ttl_s * 1000))


async def check_session(client, prefix: str, worker_id: str, session_id: str, ttl_s: float) -> tuple[bool, bool]:
    """(the worker heartbeats, the session's key was still there), in one round trip that renews the key."""
    pipe = client.pipeline(transaction=False)
    pipe.exists(worker_key(prefix, worker_id))
    pipe.set(session_key(prefix, session_id), 1, px=int(ttl_s * 1000), get=True)
    alive, previous = await pipe.execute()
    return bool(alive), previous is not None


class RedisOutage:
    """The retries of one loop through a Redis outage: a capped backoff, and a budget of time.

    A Redis restart takes seconds. Gateways and workers retry what failed, and give up only once
    failures have lasted ``budget_s`` (``ASR_REDIS_OUTAGE_S``); ``recovered()`` after a success.
    """

    def __init__(self, budget_s: float, *, first_delay_s: float = 0.1, max_delay_s: float = 2.0) -> None:
        self.budget_s = budget_s
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.since: float | None = None
        self.failures = 0

    def recovered(self) -> None:
        self.since, self.failures = None, 0

    async def wait(self) -> bool:
        """After a failure: back off and return True, or return False once the budget is spent."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        left = self.since + self.budget_s - now
        if left <= 0:
            return False
        self.failures += 1
        await asyncio.sleep(min(self.first_delay_s * 2 ** (self.failures - 1), self.max_delay_s, left))
        return True
