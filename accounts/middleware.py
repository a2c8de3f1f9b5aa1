"""Channels middleware that turns a credential into a tenant on the scope.

Credentials: an API key in ``Authorization: Bearer`` (or Deepgram's ``Token`` scheme), in
``Sec-WebSocket-Protocol: token, <key>`` (Deepgram's browser form), or ``?api_key=`` on the paths
of protocols whose clients send no credentials at all (FunASR's); or ``?token=`` with a
short-lived single-use token minted for a logged-in browser (which cannot set headers on a WebSocket). The consumer
decides what to do with an unauthenticated connection (it must accept the socket to be able to
send a protocol error and close with 4001), so this middleware only annotates.
"""

import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings

from accounts import keys, principal, ratelimit, selectors, services
from accounts.credentials import header_value, parse_authorization, subprotocol_credential
from accounts.principal import Principal

logger = logging.getLogger(__name__)


# Paths whose clients cannot send a header or a subprotocol: the key may come as ``?api_key=``.
QUERY_KEY_PATHS = ("/ws/funasr",)
# Paths whose clients present the credential in their first message (Twilio's customParameters):
# a handshake without one is left to the consumer, which calls ``authenticate`` with it.
DEFERRED_CREDENTIAL_PATHS = ("/ws/twilio",)


def api_key_of(scope: dict[str, Any]) -> str | None:
    """The API key a handshake presents, in any of the forms above."""
    headers = scope.get("headers", [])
    key = parse_authorization(header_value(headers, b"authorization"))
    if key is None:
        key = subprotocol_credential(list(scope.get("subprotocols") or []))
    if key is None and scope.get("path") in QUERY_KEY_PATHS:
        key = query_value(scope.get("query_string", b""), "api_key")
    return key


@database_sync_to_async
def principal_for_key(raw_key: str) -> Principal | None:
    api_key = selectors.api_key_authenticate(raw_key=raw_key)
    if api_key is None:
        return None
    services.api_key_mark_used(api_key_id=api_key.pk)
    return principal.principal_for_api_key(api_key)


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """A browser's Origin is on ASR_ALLOWED_ORIGINS, or is this host when the list is empty.

    No Origin header means no browser (browsers always send one on a WebSocket handshake).
    """
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if settings.ASR_ALLOWED_ORIGINS:
        return "*" in settings.ASR_ALLOWED_ORIGINS or origin in settings.ASR_ALLOWED_ORIGINS
    _, _, origin_host = origin.partition("://")
    return bool(host) and origin_host == host


def query_value(query_string: bytes, name: str) -> str | None:
    values = parse_qs(query_string.decode("latin-1")).get(name) or [""]
    return values[0].strip() or None


@database_sync_to_async
def principal_for_stream_token(raw_token: str) -> Principal | None:
    token = services.stream_token_consume(raw_token=raw_token)
    if token is None:
        return None
    return principal.principal_for_stream_token(token)


class ApiKeyAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        """Refuses the handshake (HTTP 403) for a foreign browser Origin.

        A rate-limited address is not authenticated at all: ``rate_limited_for_s`` on the scope has
        the consumer answer with the protocol's ``rate_limited`` error.
        """
        headers = scope.get("headers", [])
        key = api_key_of(scope)
        token = None if key is not None else query_value(scope.get("query_string", b""), "token")
        if key is not None and keys.parse_key(key) is None:  # a stream token where a key may be (a client secret)
            key, token = None, key
        if key is None and not origin_allowed(header_value(headers, b"origin"), header_value(headers, b"host")):
            logger.warning("websocket origin refused origin=%r", header_value(headers, b"origin"))
            return await WebsocketDenier()(scope, receive, send)
        presented = key is not None or token is not None
        if not presented and scope.get("path") in DEFERRED_CREDENTIAL_PATHS:
            return await self.inner(dict(scope, principal=None, presented_credentials=False), receive, send)
        principal, blocked_for = await authenticate(scope, key=key, token=token)
        scope = dict(scope, principal=principal, presented_credentials=presented)
        if blocked_for is not None:
            scope["rate_limited_for_s"] = blocked_for
        return await self.inner(scope, receive, send)


async def authenticate(scope: dict, *, key: str | None, token: str | None) -> tuple[Principal | None, int | None]:
    """A connection's API key or stream token, counted against its address's failures:
    (principal, None); (None, None) when refused; (None, retry after s) when the address is blocked."""
    address = ratelimit.scope_address(scope)
    if not await ratelimit.aattempt_reserve(action="ws_auth_failure", address=address):
        blocked_for = await ratelimit.aretry_after_s(action="ws_auth_failure", address=address)
        logger.warning("websocket auth rate-limited retry_after_s=%d", blocked_for)
        return None, blocked_for
    principal = None
    if key is not None:
        principal = await principal_for_key(key)
    elif token is not None:
        principal = await principal_for_stream_token(token)
    if principal is not None:  # only failures count against the address
        await ratelimit.aattempt_release(action="ws_auth_failure", address=address)
    return principal, None
