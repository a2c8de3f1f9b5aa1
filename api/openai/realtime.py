"""Client secrets for OpenAI Realtime transcription in a browser: our single-use stream tokens.

A page must not hold an API key: its server asks ``POST /v1/realtime/client_secrets`` (or the
beta's ``POST /v1/realtime/transcription_sessions``) with the key and hands the page the secret,
which the page presents as ``openai-insecure-api-key.<secret>`` when it connects. The secret
opens one connection within its lifetime; the session's settings still come with ``session.update``.
"""

import uuid
from datetime import datetime

from channels.db import database_sync_to_async
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import services as account_services
from api.openai.errors import OpenAIError
from api.openai.views import authenticate
from transcription.gateway.protocols.openai_realtime import TranscriptionSettings


def _mint(request: HttpRequest) -> tuple[str, datetime]:
    api_key = authenticate(request)
    raw, token = account_services.stream_token_mint(tenant=api_key.tenant)
    return raw, token.expires_at


@csrf_exempt
async def client_secrets(request: HttpRequest) -> JsonResponse:
    """GA: ``{"value", "expires_at", "session"}``."""
    if request.method != "POST":
        return OpenAIError(405, "Use POST.").response()
    try:
        raw, expires_at = await database_sync_to_async(_mint)(request)
    except OpenAIError as error:
        return error.response()
    session = {**TranscriptionSettings().public(beta=False), "id": f"sess_{uuid.uuid4().hex[:12]}"}
    return JsonResponse({"value": raw, "expires_at": int(expires_at.timestamp()), "session": session})


@csrf_exempt
async def transcription_sessions(request: HttpRequest) -> JsonResponse:
    """The beta's: the session with ``client_secret: {"value", "expires_at"}``."""
    if request.method != "POST":
        return OpenAIError(405, "Use POST.").response()
    try:
        raw, expires_at = await database_sync_to_async(_mint)(request)
    except OpenAIError as error:
        return error.response()
    session = {**TranscriptionSettings().public(beta=True), "id": f"sess_{uuid.uuid4().hex[:12]}"}
    return JsonResponse({**session, "client_secret": {"value": raw, "expires_at": int(expires_at.timestamp())}})
