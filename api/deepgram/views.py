"""``POST /v1/listen``: Deepgram's pre-recorded API over our file jobs.

The audio is the raw request body (any content type but JSON), the query parameters are Deepgram's
(options.py), the key comes as ``Authorization: Token <key>`` (or ``Bearer``). The request becomes
an ordinary file job (same limits, quota, metering and stored transcript; protocol ``deepgram``) and
is answered once the job has ended, waiting at most ASR_OPENAI_WAIT_S as OpenAI's endpoint does
(then 504, and the job goes on). With ``callback=<url>`` the answer is at once ``{"request_id"}``
and the result is sent, signed, to the URL (transcription/webhooks.py). A JSON body
``{"url": …}`` is refused: this server never fetches audio from a URL it is given.
"""

import asyncio
import dataclasses
import hashlib
import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.credentials import parse_authorization
from accounts.models import ApiKey
from api import job_progress
from api.deepgram import options, results
from api.deepgram.errors import DeepgramError, refusal_error
from transcription import file_jobs, webhook_targets, webhooks
from transcription.models import FileTranscription, Session, WebhookDelivery

SPOOL_CHUNK_BYTES = 64 * 1024
MAX_JSON_BYTES = 16 * 1024


def _authenticate(request: HttpRequest) -> ApiKey:
    raw = parse_authorization(request.headers.get("Authorization", ""))
    api_key = account_selectors.api_key_authenticate(raw_key=raw) if raw else None
    if api_key is None:
        raise DeepgramError(401, "unauthenticated", "Invalid credentials: send 'Authorization: Token <API key>'.")
    account_services.api_key_mark_used(api_key_id=api_key.pk)
    return api_key


def _refuse_json(request: HttpRequest) -> None:
    """A JSON body asks us to fetch a URL: refused, with why. Blocking (reads the small body)."""
    try:
        data = json.loads(request.read(MAX_JSON_BYTES + 1)[:MAX_JSON_BYTES] or b"null")
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and "url" in data:
        message = "Remote URLs are not supported: this server does not fetch audio. Send the audio itself as the body."
    else:
        message = "Send the audio as the request body (Content-Type audio/* or application/octet-stream)."
    raise DeepgramError(400, "bad_request", message)


def _spool(request: HttpRequest) -> tuple[TemporaryUploadedFile, str]:
    """The body into a temporary file (the job's upload) and its SHA-256. Blocking."""
    content_type = request.content_type or "application/octet-stream"
    upload = TemporaryUploadedFile("audio", content_type, 0, None)
    digest, size = hashlib.sha256(), 0
    try:
        while chunk := request.read(SPOOL_CHUNK_BYTES):
            size += len(chunk)
            if size > settings.ASR_FILE_MAX_BYTES:
                raise DeepgramError(413, "too_large", f"Files may be at most {settings.ASR_FILE_MAX_BYTES} bytes.")
            digest.update(chunk)
            upload.write(chunk)
        if size == 0:
            raise DeepgramError(400, "no_audio", "The request has no body: send the audio as the request body.")
    except BaseException:
        upload.close()
        raise
    upload.size = size
    upload.seek(0)
    return upload, digest.hexdigest()


def _callback(listen: options.ListenOptions) -> webhooks.CallbackRequest | None:
    """The callback asked for, checked (a public http(s) host). Blocking: resolves the host."""
    if listen.callback is None:
        return None
    try:
        return webhooks.callback_request(
            url=listen.callback, method=listen.callback_method, payload=WebhookDelivery.Payload.DEEPGRAM
        )
    except webhook_targets.TargetRefused as refusal:
        raise DeepgramError(400, "bad_callback", str(refusal)) from None


def _create(
    api_key: ApiKey,
    upload: TemporaryUploadedFile,
    job_options: dict[str, Any],
    callback: webhooks.CallbackRequest | None,
) -> FileTranscription:
    arguments: dict[str, Any] = {
        "tenant_id": api_key.tenant_id,
        "api_key_id": api_key.pk,
        "upload": upload,
        "options": job_options,
        "protocol": Session.Protocol.DEEPGRAM,
    }
    try:
        if callback is None:
            return file_jobs.job_create(**arguments)
        return webhooks.job_create_with_callback(**arguments, callback=callback)
    except file_jobs.JobRefused as refusal:
        raise refusal_error(refusal) from None


@csrf_exempt
async def listen(request: HttpRequest) -> HttpResponse:
    """Deepgram's ``POST /v1/listen`` (pre-recorded), answered when the job has ended or, with a
    callback, at once."""
    if request.method != "POST":
        return DeepgramError(405, "method_not_allowed", "Use POST (or a WebSocket for live audio).").response()
    upload: TemporaryUploadedFile | None = None
    try:
        api_key = await database_sync_to_async(_authenticate)(request)
        listen_options = options.parse(request.GET)
        if request.content_type == "application/json":
            await sync_to_async(_refuse_json, thread_sensitive=False)(request)
        callback = await asyncio.to_thread(_callback, listen_options)
        upload, sha256 = await sync_to_async(_spool, thread_sensitive=False)(request)
        context = {"sha256": sha256, "utterances": listen_options.utterances}
        if callback is not None:
            callback = dataclasses.replace(callback, context=context)
        job = await database_sync_to_async(_create)(api_key, upload, listen_options.options, callback)
        if callback is not None:
            return JsonResponse({"request_id": str(job.pk)})
        job = await job_progress.until_ended(job.pk, api_key.tenant_id, wait_s=settings.ASR_OPENAI_WAIT_S)
        if job.status == FileTranscription.Status.FAILED:
            raise results.failure(job)
        segments = await job_progress.segments(job)
    except DeepgramError as error:
        return error.response()
    except job_progress.StillRunning as still:
        return DeepgramError(504, "timeout", str(still), request_id=str(still.job_id)).response()
    finally:
        if upload is not None:
            upload.close()
    body = results.response_body(job, segments, context)
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})
