"""Per-client-address attempt counters in Django's cache (Redis when REDIS_URL is set).

A fixed window per (action, address): the first counted attempt opens it for ``window_s``. Used
for failed WebSocket authentication, failed logins and sign-ups. The async (WebSocket) side also
keeps the window's end beside the count, to tell a blocked client when to retry.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    attempts: int
    window_s: int


def limit_for(action: str) -> Limit:
    attempts, window_s = settings.ASR_RATE_LIMITS[action]
    return Limit(attempts=attempts, window_s=window_s)


def _key(action: str, address: str) -> str:
    return f"ratelimit:{action}:{hashlib.sha256(address.encode()).hexdigest()[:32]}"


def _until_key(key: str) -> str:
    return f"{key}:until"


def request_address(request: HttpRequest) -> str:
    """The peer address Django sees (put the proxy's real-IP handling in front of it, e.g. nginx realip)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def scope_address(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def is_blocked(*, action: str, address: str) -> bool:
    return (cache.get(_key(action, address)) or 0) >= limit_for(action).attempts


def attempt_record(*, action: str, address: str) -> int:
    """Count one attempt; returns the count in the current window."""
    key = _key(action, address)
    cache.add(key, 0, timeout=limit_for(action).window_s)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=limit_for(action).window_s)
        count = 1
    if count == limit_for(action).attempts:
        logger.warning("rate limit reached action=%s", action)
    return count


async def ablocked_for(*, action: str, address: str) -> int | None:
    """Whole seconds until the address may try again, or None when it is not blocked."""
    key, limit = _key(action, address), limit_for(action)
    values = await cache.aget_many([key, _until_key(key)])
    if (values.get(key) or 0) < limit.attempts:
        return None
    until = values.get(_until_key(key))
    return max(1, math.ceil(until - time.time())) if until else limit.window_s


async def aattempt_record(*, action: str, address: str) -> int:
    key, window_s = _key(action, address), limit_for(action).window_s
    if await cache.aadd(key, 0, timeout=window_s):
        await cache.aset(_until_key(key), time.time() + window_s, timeout=window_s)
    try:
        return await cache.aincr(key)
    except ValueError:
        await cache.aset_many({key: 1, _until_key(key): time.time() + window_s}, timeout=window_s)
        return 1
