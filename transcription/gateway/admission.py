"""Admission of live streams against a tenant's concurrency cap, across every gateway process.

Each live session holds a slot: a member of the tenant's Redis sorted set whose score is an expiry
time, pushed forward by the session's heartbeat. A gateway that crashes stops heartbeating and its
slots expire, so they never hold a tenant's capacity for long. Without Redis (embedded mode, one
process), the same bookkeeping lives in memory.
"""

import time

import redis.asyncio as aioredis

from asrplatform import process_state
from transcription.redis_clients import async_redis

ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])) + 60)
return 1
"""


class RedisAdmission:
    def __init__(self, url: str, prefix: str, ttl_s: float) -> None:
        self.url, self.prefix, self.ttl_s = url, prefix, ttl_s

    def _redis(self) -> aioredis.Redis:
        return async_redis(self.url)

    def _key(self, tenant_id: int) -> str:
        return f"{self.prefix}:streams:{tenant_id}"

    async def acquire(self, tenant_id: int, session_id: str, limit: int) -> bool:
        """Take (or refresh) a slot for the session; False when the tenant is at its cap."""
        now = time.time()
        args: list[float | str] = [now, now + self.ttl_s, limit, session_id, self.ttl_s]
        return bool(await self._redis().eval(ACQUIRE, 1, self._key(tenant_id), *args))

    async def heartbeat(self, tenant_id: int, session_id: str) -> None:
        """Push the slot's expiry forward; re-take a slot that expired while Redis was unreachable
        (the session kept streaming, so it must count again). The key outlives its slots by a minute,
        so a tenant's set vanishes once nobody streams."""
        pipe = self._redis().pipeline()
        pipe.zadd(self._key(tenant_id), {session_id: time.time() + self.ttl_s})
        pipe.expire(self._key(tenant_id), int(self.ttl_s) + 61)
        await pipe.execute()

    async def release(self, tenant_id: int, session_id: str) -> None:
        await self._redis().zrem(self._key(tenant_id), session_id)

    async def live_count(self, tenant_id: int) -> int:
        return int(await self._redis().zcount(self._key(tenant_id), time.time(), "+inf"))


class LocalAdmission:
    """The same rules for one embedded server process."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.slots: dict[int, dict[str, float]] = {}

    def _live(self, tenant_id: int) -> dict[str, float]:
        now = time.time()
        slots = self.slots.setdefault(tenant_id, {})
        for session_id in [s for s, expiry in slots.items() if expiry < now]:
            del slots[session_id]
        return slots

    async def acquire(self, tenant_id: int, session_id: str, limit: int) -> bool:
        slots = self._live(tenant_id)
        if session_id not in slots and len(slots) >= limit:
            return False
        slots[session_id] = time.time() + self.ttl_s
        return True

    async def heartbeat(self, tenant_id: int, session_id: str) -> None:
        self._live(tenant_id)[session_id] = time.time() + self.ttl_s

    async def release(self, tenant_id: int, session_id: str) -> None:
        self._live(tenant_id).pop(session_id, None)

    async def live_count(self, tenant_id: int) -> int:
        return len(self._live(tenant_id))


def get_admission() -> RedisAdmission | LocalAdmission:
    from django.conf import settings

    url = settings.ASR_ADMISSION_REDIS_URL

    def build() -> RedisAdmission | LocalAdmission:
        ttl = settings.ASR_STREAM_TTL_S
        return RedisAdmission(url, settings.ASR_REDIS_PREFIX, ttl) if url else LocalAdmission(ttl)

    return process_state.get(("admission", url), build)
