"""Refuse HTTP request bodies before they are read: by size, and for uploads by credentials.

Django's ASGI handler reads a whole body into a spooled file before any view runs, so no view can
refuse an upload early. This middleware stands in front of Django and:

- answers 401 to an upload (a path in ``UPLOAD_PATHS``) without a valid credential, and 413 to
  any request whose ``Content-Length`` exceeds its path's cap, before reading a byte of the body;
- counts the body as it streams in and, past the cap (a chunked body, or one longer than it
  said), answers 413 itself and tells the application the client went away.

On OpenAI's API (``/v1/``) the refusals come in OpenAI's error shape, which its SDK reads; on
Deepgram's (``/v1/listen``) in Deepgram's, and its ``Authorization: Token <key>`` is accepted.

Only a server that streams bodies to the application makes this cheap: uvicorn does (and pauses
reading the socket while the application is not reading); daphne buffers every body whole
before calling the application, which is why ``asrplatform.server`` serves with uvicorn.
"""

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.credentials import http_credentials_refusal

logger = logging.getLogger(__name__)

# Multipart boundaries and the form's other fields around an uploaded file.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
# Paths whose POST carries an audio file: the caller must be authenticated before the body is read.
DEEPGRAM_LISTEN = "/v1/listen"
UPLOAD_PATHS = frozenset(
    {"/api/v1/transcriptions", "/v1/audio/transcriptions", "/v1/audio/translations", DEEPGRAM_LISTEN}
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def upload_max_bytes() -> int:
    """The largest request body an upload may have: the file's limit plus the form around it."""
    return int(settings.ASR_FILE_MAX_BYTES) + UPLOAD_OVERHEAD_BYTES


@dataclass(frozen=True)
class BodyPolicy:
    max_bytes: int
    needs_credentials: bool
    too_large_detail: str
    openai: bool = False  # refusals in OpenAI's error shape
    deepgram: bool = False  # refusals in Deepgram's, and its Token scheme for the key

    def refusal(self, code: str, detail: str) -> dict[str, Any]:
        if self.deepgram:
            return {"err_code": code.upper(), "err_msg": detail, "request_id": str(uuid.uuid4())}
        if self.openai:
            return {"error": {"message": detail, "type": "invalid_request_error", "param": None, "code": code}}
        return {"code": code, "detail": detail}


def policy_for(method: str, path: str) -> BodyPolicy:
    if method in BODY_METHODS and path in UPLOAD_PATHS:
        detail = f"Files may be at most {settings.ASR_FILE_MAX_BYTES} bytes."
        return BodyPolicy(
            max_bytes=upload_max_bytes(),
            needs_credentials=True,
            too_large_detail=detail,
            openai=path.startswith("/v1/") and path != DEEPGRAM_LISTEN,
            deepgram=path == DEEPGRAM_LISTEN,
        )
    max_bytes = int(settings.ASR_HTTP_MAX_BODY_BYTES)
    detail = f"Request bodies may be at most {max_bytes} bytes here."
    return BodyPolicy(max_bytes=max_bytes, needs_credentials=False, too_large_detail=detail)


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length, or None when there is none; raises ValueError when it is malformed."""
    values = [value for name, value in headers if name.lower() == b"content-length"]
    if not values:
        return None
    if len(set(values)) > 1 or not values[0].strip().isdigit():
        raise ValueError("malformed Content-Length")
    return int(values[0])


async def respond(send: Any, status: int, body: dict, extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """A complete JSON response that also tells the client this connection is done."""
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class _MeteredBody:
    """Wraps receive/send: past the policy's ``max_bytes`` of body, answers 413 and reports a disconnect."""

    def __init__(self, receive: Any, send: Any, policy: BodyPolicy) -> None:
        self._receive, self._send, self.policy = receive, send, policy
        self.received = 0
        self.response_started = False
        self.cut_off = False

    async def receive(self) -> dict:
        if self.cut_off:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.policy.max_bytes:
                self.cut_off = True
                logger.warning("request body cut off at max_bytes=%d", self.policy.max_bytes)
                if not self.response_started:
                    await respond(self._send, 413, self.policy.refusal("too_large", self.policy.too_large_detail))
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: dict) -> None:
        if self.cut_off:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)


class BodyLimitMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        policy = policy_for(scope.get("method", "GET"), scope.get("path", ""))
        try:
            declared = declared_length(headers)
        except ValueError:
            return await respond(send, 400, {"code": "bad_request", "detail": "Malformed Content-Length header."})
        if policy.needs_credentials:
            refusal = await database_sync_to_async(http_credentials_refusal)(headers, token_scheme=policy.deepgram)
            if refusal is not None:
                if policy.deepgram:
                    return await respond(send, 401, policy.refusal("unauthenticated", refusal))
                body = policy.refusal("invalid_api_key", refusal) if policy.openai else {"detail": refusal}
                return await respond(send, 401, body, ((b"www-authenticate", b"Bearer"),))
        if declared is not None and declared > policy.max_bytes:
            return await respond(send, 413, policy.refusal("too_large", policy.too_large_detail))
        metered = _MeteredBody(receive, send, policy)
        return await self.app(scope, metered.receive, metered.send)
