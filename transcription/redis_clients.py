"""Async Redis clients, one per event loop and URL (a redis.asyncio client is bound to its loop)."""

import asyncio

import redis.asyncio as aioredis

_clients: dict[tuple[asyncio.AbstractEventLoop, str], aioredis.Redis] = {}


def async_redis(url: str) -> aioredis.Redis:
    key = (asyncio.get_running_loop(), url)
    if key not in _clients:
        _clients[key] = aioredis.Redis.from_url(url)
    return _clients[key]
