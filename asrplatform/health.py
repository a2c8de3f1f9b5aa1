"""Liveness and readiness for load balancers and orchestrators.

``/healthz``: the process answers (restart it if not). ``/readyz``: it can serve, its database and
(when configured) Redis answer within a couple of seconds, and in embedded mode its models are in
memory; a load balancer stops routing to it while this says 503.
"""

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 2.0


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        logger.warning("readiness: database unavailable: %s", type(exc).__name__)
        return "unavailable"


def _redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.ping()
        return "ok"
    except redis.RedisError as exc:
        logger.warning("readiness: redis unavailable: %s", type(exc).__name__)
        return "unavailable"
    finally:
        client.close()


def _models() -> str | None:
    """The embedded engine's models: "loading" while preloading, then "ok" or "failed"; None where
    they are not preloaded here (Celery workers decode, or ASR_PRELOAD is off)."""
    if settings.ASR_DISPATCH != "local":
        return None
    from transcription.dispatch import get_dispatcher

    state = getattr(get_dispatcher(), "models_state", "not preloaded")
    return None if state == "not preloaded" else state


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "redis": _redis()}
    models = _models()
    if models is not None:
        checks["models"] = models
    ready = all(value in ("ok", "not configured") for value in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
