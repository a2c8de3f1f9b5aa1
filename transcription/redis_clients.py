"""Async Redis clients, one per event loop and URL (a redis.asyncio client is bound to its loop)."""

import asyncio

import redis.asyncio as aioredis

from asrplatform import process_state

# No command of ours blocks on the server, so a Redis that stops answering is an error within seconds
# (callers log and retry), never a coroutine waiting for the OS's TCP timeout.
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 3.0


def async_redis(url: str) -> aioredis.Redis:
    def connect() -> aioredis.Redis:
        return aioredis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S, health_check_interval=30
        )

    return process_state.get(("redis.async", asyncio.get_running_loop(), url), connect)
