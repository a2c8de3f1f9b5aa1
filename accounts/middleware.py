"""Channels middleware that turns a credential into a tenant on the scope.

Credentials: an ``Authorization: Bearer`` API key, or ``?token=`` with a short-lived single-use
token minted for a logged-in browser (which cannot set headers on a WebSocket). The consumer
decides what to do with an unauthenticated connection (it must accept the socket to be able to
send a protocol error and close with 4001), so this middleware only annotates.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from accounts import selectors, services


@dataclass(frozen=True)
class StreamPrincipal:
    """Who a WebSocket session acts for; plain ids so it can travel to tasks and threads."""

    tenant_id: int
    tenant_name: str
    api_key_id: int | None


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


@database_sync_to_async
def principal_for_key(raw_key: str) -> StreamPrincipal | None:
    api_key = selectors.api_key_authenticate(raw_key=raw_key)
    if api_key is None:
        return None
    services.api_key_mark_used(api_key_id=api_key.pk)
    return StreamPrincipal(tenant_id=api_key.tenant_id, tenant_name=api_key.tenant.name, api_key_id=api_key.pk)


def query_token(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1")).get("token") or [""]
    return values[0].strip() or None


@database_sync_to_async
def principal_for_stream_token(raw_token: str) -> StreamPrincipal | None:
    token = services.stream_token_consume(raw_token=raw_token)
    if token is None:
        return None
    return StreamPrincipal(tenant_id=token.tenant_id, tenant_name=token.tenant.name, api_key_id=None)


class ApiKeyAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        principal = None
        key = bearer_token(scope.get("headers", []))
        token = None if key is not None else query_token(scope.get("query_string", b""))
        if key is not None:
            principal = await principal_for_key(key)
        elif token is not None:
            principal = await principal_for_stream_token(token)
        presented = key is not None or token is not None
        scope = dict(scope, principal=principal, presented_credentials=presented)
        return await self.inner(scope, receive, send)
