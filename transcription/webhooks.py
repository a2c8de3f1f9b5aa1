"""Callbacks: a file job's result, signed with its tenant's secret, sent to the URL its request named.

A request with a callback gets a ``WebhookDelivery`` row in the same transaction as its job. Every
server process, embedded or in front of Celery workers, runs :func:`deliver_periodically` from its
ASGI lifespan (next to the sweeper, transcription/sweeper.py): it claims the due rows whose job has
ended, sends each on a small thread pool and records the attempt on the row (attempts, last status,
delivered_at). A failed attempt is tried again ASR_WEBHOOK_BACKOFF_S later, twice as long each time
(at most ASR_WEBHOOK_BACKOFF_MAX_S), until ASR_WEBHOOK_MAX_ATTEMPTS attempts were made.

Rows are claimed under SKIP LOCKED and leased, so processes never share an attempt; one killed
mid-send leaves its row to be sent again once the lease is over. Delivery is at least once:
receivers tell a repeat by ``X-Asr-Request-Id``.

Signature: ``X-Asr-Timestamp: <unix seconds>`` and ``X-Asr-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<raw body>`` keyed with the tenant's secret (accounts). The timestamp
is signed so that a receiver can refuse an old, replayed callback.
"""

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import close_old_connections, transaction
from django.utils import timezone

from accounts import services as account_services
from asrplatform import process_state
from transcription import file_jobs, webhook_targets
from transcription.models import FileTranscription, WebhookDelivery

logger = logging.getLogger(__name__)

METHODS = ("POST", "PUT")
ENDED = (FileTranscription.Status.DONE, FileTranscription.Status.FAILED)
SIGNATURE_HEADER = "X-Asr-Signature"
TIMESTAMP_HEADER = "X-Asr-Timestamp"

# How each kind of payload is rendered from its ended job: filled in by the API layer that defines
# the formats (api/apps.py), since the transcription app knows nothing of the wire formats above it.
Renderer = Callable[[FileTranscription, dict[str, Any]], bytes]
PAYLOADS: dict[str, Renderer] = {}


def register_payload(kind: str, render: Renderer) -> None:
    PAYLOADS[kind] = render


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Asr-Signature`` value: ``sha256=`` and the hex HMAC of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class CallbackRequest:
    """A validated callback: where, how, and which payload (with what it needs besides the job)."""

    url: str
    method: str
    payload: str
    context: dict[str, Any] = field(default_factory=dict)


def callback_request(*, url: str, method: str = "POST", payload: str, context: dict | None = None) -> CallbackRequest:
    """Check a client's callback: http(s), a public host (TargetRefused otherwise). Blocking: resolves."""
    method = (method or "POST").upper()
    if method not in METHODS:
        raise webhook_targets.TargetRefused(f"The callback method must be one of {', '.join(METHODS)}.")
    webhook_targets.check(url)
    return CallbackRequest(url=url, method=method, payload=payload, context=dict(context or {}))


def job_create_with_callback(
    *,
    tenant_id: int,
    api_key_id: int | None,
    upload: UploadedFile,
    options: dict[str, Any],
    protocol: str,
    callback: CallbackRequest,
) -> FileTranscription:
    """A file job (file_jobs.job_create, same refusals) and its callback (from callback_request), stored together.

    The tenant's signing secret is made here if it has none yet, so it exists before the first
    callback is signed and the owner can fetch it while the job runs.
    """
    with transaction.atomic():
        account_services.webhook_secret_ensure(tenant_id=tenant_id)
        job = file_jobs.job_create(
            tenant_id=tenant_id, api_key_id=api_key_id, upload=upload, options=options, protocol=protocol
        )
        WebhookDelivery.objects.create(
            job=job,
            tenant_id=tenant_id,
            url=callback.url,
            method=callback.method,
            payload=callback.payload,
            context=callback.context,
        )
    logger.info("callback registered job_id=%s tenant_id=%s payload=%s", job.pk, tenant_id, callback.payload)
    return job


def backoff_s(attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt: doubling from ASR_WEBHOOK_BACKOFF_S."""
    return float(min(settings.ASR_WEBHOOK_BACKOFF_S * 2 ** (attempts - 1), settings.ASR_WEBHOOK_BACKOFF_MAX_S))


def _lease() -> timedelta:
    """How long a claimed attempt is its process's: its DNS lookup, connection and answer, with room."""
    return timedelta(seconds=3 * settings.ASR_WEBHOOK_TIMEOUT_S + 30)


def deliveries_claim(*, limit: int, now: datetime | None = None) -> list[int]:
    """Take up to ``limit`` due callbacks whose job has ended; their ids, each leased to this process.

    Cross-tenant on purpose: a system job (every server's delivery loop), never a tenant's request.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, job__status__in=ENDED)
            .order_by("next_attempt_at")[:limit]
        )
        rows = list(due)
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + _lease()
            row.save(update_fields=["attempts", "next_attempt_at"])
    return [row.pk for row in rows]


def _request(delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
    """The body and headers of this attempt, signed now with the tenant's current secret."""
    job = FileTranscription.objects.select_related("session").get(pk=delivery.job_id, tenant_id=delivery.tenant_id)
    body = PAYLOADS[delivery.payload](job, delivery.context)
    secret = account_services.webhook_secret_ensure(tenant_id=delivery.tenant_id)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "asrplatform-webhook/1",
        "X-Asr-Request-Id": str(job.pk),
        "X-Asr-Attempt": str(delivery.attempts),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    return body, headers


def deliver(delivery_id: int) -> webhook_targets.Answer:
    """Make the claimed attempt of one callback and record how it went. Blocking (DNS, HTTP)."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    try:
        body, headers = _request(delivery)
        target = webhook_targets.check(delivery.url)  # again: the host may resolve elsewhere by now
    except webhook_targets.TargetRefused as refusal:
        answer = webhook_targets.Answer(status=None, error=str(refusal)[:200])
    except Exception:  # counted as an attempt, so that a callback that cannot be made is given up in the end
        logger.exception("callback could not be prepared job_id=%s tenant_id=%s", delivery.job_id, delivery.tenant_id)
        answer = webhook_targets.Answer(status=None, error="The callback could not be prepared (server error).")
    else:
        answer = webhook_targets.send(target, method=delivery.method, body=body, headers=headers)
    _record(delivery, answer)
    return answer


def _record(delivery: WebhookDelivery, answer: webhook_targets.Answer) -> None:
    now = timezone.now()
    changes: dict[str, Any] = {"last_status_code": answer.status, "last_error": answer.error}
    if answer.ok:
        changes.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=now)
    elif delivery.attempts >= settings.ASR_WEBHOOK_MAX_ATTEMPTS:
        changes.update(status=WebhookDelivery.Status.FAILED)
    else:
        changes.update(next_attempt_at=now + timedelta(seconds=backoff_s(delivery.attempts)))
    rows = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING)
    if not answer.ok:  # a later claim (after this lease ran out) owns the row now; a success still counts
        rows = rows.filter(attempts=delivery.attempts)
    rows.update(**changes)
    logger.info(
        "callback attempt job_id=%s tenant_id=%s attempt=%d http_status=%s outcome=%s",
        delivery.job_id,
        delivery.tenant_id,
        delivery.attempts,
        answer.status if answer.status is not None else "-",
        changes.get("status", "retry"),
    )


def _deliver_logged(delivery_id: int) -> None:
    close_old_connections()
    try:
        deliver(delivery_id)
    except Exception:  # the row stays leased, then is tried again; the loop goes on
        logger.exception("callback attempt crashed delivery_id=%s", delivery_id)
    finally:
        close_old_connections()


def _executor() -> ThreadPoolExecutor:
    def build() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(settings.ASR_WEBHOOK_CONCURRENCY, thread_name_prefix="asr-webhook")

    return process_state.get(("webhooks.executor",), build, close=lambda pool: pool.shutdown(wait=False))


async def deliver_periodically() -> None:
    """Until cancelled: every ASR_WEBHOOK_POLL_S, claim as many due callbacks as there are free
    threads and send them. A slow receiver holds up one thread, not the loop."""
    loop = asyncio.get_running_loop()
    running: set[asyncio.Future] = set()
    while True:
        free = settings.ASR_WEBHOOK_CONCURRENCY - len(running)
        if free > 0:
            try:
                claimed = await database_sync_to_async(deliveries_claim)(limit=free)
            except Exception:
                logger.warning("claiming due callbacks failed, retrying", exc_info=True)
                claimed = []
            for delivery_id in claimed:
                future = loop.run_in_executor(_executor(), _deliver_logged, delivery_id)
                running.add(future)
                future.add_done_callback(running.discard)
        await asyncio.sleep(settings.ASR_WEBHOOK_POLL_S)
