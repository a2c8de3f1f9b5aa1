"""Per-client-address attempt counters in Django's cache (Redis when REDIS_URL is set).

A fixed window per (action, address): the first counted attempt opens it for ``window_s``, and its
end is kept beside the count to tell a blocked client when to retry. Used for failed WebSocket
authentication, failed logins (site and admin) and sign-ups. Every attempt is reserved (counted)
before it is evaluated, so concurrent attempts cannot all slip under the limit; a failed-attempt
limit releases the reservation when the attempt succeeds.
"""

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

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


def _reserve(key: str, limit: Limit) -> bool:
    if cache.add(key, 0, timeout=limit.window_s):
        cache.set(_until_key(key), time.time() + limit.window_s, timeout=limit.window_s)
    try:
        count = cache.incr(key)  # atomic: Redis INCR, or locmem's incr under its lock
    except ValueError:  # expired between add and incr
        cache.set_many({key: 1, _until_key(key): time.time() + limit.window_s}, timeout=limit.window_s)
        count = 1
    if count == limit.attempts:
        logger.warning("rate limit reached key=%s", key.rsplit(":", 1)[0])
    return count <= limit.attempts


def attempt_reserve(*, action: str, address: str) -> bool:
    """Count an attempt before it is evaluated; False when the address is over its limit (refuse it).

    Reserving first is what makes the limit hold under concurrency: N attempts at once are N
    increments, and only those within the limit go on to be evaluated.
    """
    return _reserve(_key(action, address), limit_for(action))


def attempt_release(*, action: str, address: str) -> None:
    """The reserved attempt succeeded: it does not count against the address (failed-attempt limits)."""
    try:
        cache.decr(_key(action, address))
    except ValueError:  # the window ended meanwhile
        pass


async def aattempt_reserve(*, action: str, address: str) -> bool:
    return await sync_to_async(attempt_reserve)(action=action, address=address)


async def aattempt_release(*, action: str, address: str) -> None:
    await sync_to_async(attempt_release)(action=action, address=address)


def retry_after_s(*, action: str, address: str) -> int:
    """Whole seconds until the address's window ends (when it may try again)."""
    key, limit = _key(action, address), limit_for(action)
    until = cache.get(_until_key(key))
    return max(1, math.ceil(until - time.time())) if until else limit.window_s


async def aretry_after_s(*, action: str, address: str) -> int:
    return await sync_to_async(retry_after_s)(action=action, address=address)


def limited_login(
    request: HttpRequest, attempt: Callable[[], HttpResponse], refused: Callable[[int], HttpResponse]
) -> HttpResponse:
    """A login POST under the failed-login limit: reserved first, released on success.

    ``attempt`` evaluates the login; ``refused(retry_after_s)`` answers an address over its limit.
    The site's login page and the admin's both go through here: one budget per address.
    """
    if request.method != "POST":
        return attempt()
    address = request_address(request)
    if not attempt_reserve(action="login_failure", address=address):
        return refused(retry_after_s(action="login_failure", address=address))
    response = attempt()
    if request.user.is_authenticated:
        attempt_release(action="login_failure", address=address)
    return response


def rate_limited_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A login view (the admin's) under ``limited_login``, refusing with a plain-text 429."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        def refused(wait: int) -> HttpResponse:
            return HttpResponse(f"{TOO_MANY} (in {wait} s)", status=429, content_type="text/plain; charset=utf-8")

        return limited_login(request, partial(view, request, *args, **kwargs), refused)

    return wrapper


TOO_MANY = "Too many attempts from your address; try again later."
